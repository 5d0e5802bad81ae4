//! AIB's rules on security types of source and target images.

use crate::template::model::SecurityType;

/// A source/target security-type combination that AIB does not support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityTypeError {
    /// TrustedLaunch and ConfidentialVM images cannot be build sources.
    #[error("source images of security type '{0}' are not supported; use a TrustedLaunchSupported or ConfidentialVMSupported image")]
    UnsupportedSource(SecurityType),
    /// TrustedLaunchSupported on one side needs TrustedLaunchSupported on the other.
    #[error("source security type '{source_type}' and target security type '{target}' do not match: a TrustedLaunchSupported image must be distributed to TrustedLaunchSupported targets, and only from one")]
    Mismatch {
        /// Security type of the source.
        source_type: SecurityType,
        /// Security type of the target.
        target: SecurityType,
    },
}

/// Checks a source's security type, and its pairing with a target's when one is known.
pub fn check_security_types(
    source: SecurityType,
    target: Option<SecurityType>,
) -> Result<(), SecurityTypeError> {
    use SecurityType::*;
    if matches!(source, TrustedLaunch | ConfidentialVm) {
        return Err(SecurityTypeError::UnsupportedSource(source));
    }
    let Some(target) = target else {
        return Ok(());
    };
    let trusted = |t: SecurityType| {
        matches!(
            t,
            TrustedLaunchSupported | TrustedLaunchAndConfidentialVmSupported
        )
    };
    if trusted(source) != trusted(target) {
        return Err(SecurityTypeError::Mismatch {
            source_type: source,
            target,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use SecurityType::*;

    #[test]
    fn refuses_trusted_launch_and_confidential_sources() {
        for source in [TrustedLaunch, ConfidentialVm] {
            assert_eq!(
                check_security_types(source, None),
                Err(SecurityTypeError::UnsupportedSource(source))
            );
        }
        assert_eq!(check_security_types(ConfidentialVmSupported, None), Ok(()));
    }

    #[test]
    fn trusted_launch_supported_must_match_both_ways() {
        assert_eq!(
            check_security_types(TrustedLaunchSupported, Some(TrustedLaunchSupported)),
            Ok(())
        );
        assert!(matches!(
            check_security_types(TrustedLaunchSupported, Some(Standard)),
            Err(SecurityTypeError::Mismatch { .. })
        ));
        assert!(matches!(
            check_security_types(Standard, Some(TrustedLaunchSupported)),
            Err(SecurityTypeError::Mismatch { .. })
        ));
        assert_eq!(check_security_types(Standard, Some(Standard)), Ok(()));
    }
}
