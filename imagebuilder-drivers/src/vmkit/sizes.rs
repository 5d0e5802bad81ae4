//! Azure VM sizes as vCPUs and memory, so `vmProfile.vmSize` means the same shape here.

use imagebuilder_core::host::HostError;
use imagebuilder_core::template::model::{HyperVGeneration, VmProfile};

/// vCPUs and memory (MiB) of a VM size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmShape {
    /// Virtual CPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
}

/// Common Azure sizes (from Azure's size tables), AIB's defaults first.
const SIZES: &[(&str, u32, u32)] = &[
    ("Standard_D1_v2", 1, 3584),
    ("Standard_D2ds_v4", 2, 8192),
    ("Standard_A1_v2", 1, 2048),
    ("Standard_A2_v2", 2, 4096),
    ("Standard_A4_v2", 4, 8192),
    ("Standard_B1s", 1, 1024),
    ("Standard_B1ms", 1, 2048),
    ("Standard_B2s", 2, 4096),
    ("Standard_B2ms", 2, 8192),
    ("Standard_B4ms", 4, 16384),
    ("Standard_D2_v2", 2, 7168),
    ("Standard_D3_v2", 4, 14336),
    ("Standard_D2_v3", 2, 8192),
    ("Standard_D4_v3", 4, 16384),
    ("Standard_D2s_v3", 2, 8192),
    ("Standard_D4s_v3", 4, 16384),
    ("Standard_D8s_v3", 8, 32768),
    ("Standard_D4ds_v4", 4, 16384),
    ("Standard_D2s_v4", 2, 8192),
    ("Standard_D2ds_v5", 2, 8192),
    ("Standard_D4ds_v5", 4, 16384),
    ("Standard_D2s_v5", 2, 8192),
    ("Standard_D4s_v5", 4, 16384),
    ("Standard_D2as_v5", 2, 8192),
    ("Standard_D4as_v5", 4, 16384),
    ("Standard_F2s_v2", 2, 4096),
    ("Standard_F4s_v2", 4, 8192),
];

/// The shape of `vm_size` (case-insensitive), or the known names when it is not one.
pub fn shape_of(vm_size: &str) -> Result<VmShape, String> {
    SIZES
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(vm_size))
        .map(|&(_, cpus, memory_mib)| VmShape { cpus, memory_mib })
        .ok_or_else(|| {
            let names: Vec<&str> = SIZES.iter().map(|(n, _, _)| *n).collect();
            format!(
                "unknown vmSize '{vm_size}'; known sizes: {}; or set cpus and memory in the host configuration",
                names.join(", ")
            )
        })
}

/// The vCPUs and memory for `profile` (or `fixed` when given), bounded by a machine with
/// `cores` and `memory_mib`: at most every core and half the memory, at least 512 MiB.
pub(crate) fn shape_for(
    fixed: Option<VmShape>,
    profile: &VmProfile,
    generation: HyperVGeneration,
    cores: u32,
    memory_mib: u32,
) -> Result<VmShape, HostError> {
    let wanted = match (fixed, profile.vm_size.as_str()) {
        (Some(shape), _) => shape,
        (None, "") => shape_of(match generation {
            HyperVGeneration::V1 => VmProfile::DEFAULT_GEN1_VM_SIZE,
            HyperVGeneration::V2 => VmProfile::DEFAULT_GEN2_VM_SIZE,
        })
        .map_err(|m| HostError::failed("size the VM", m))?,
        (None, size) => shape_of(size).map_err(|m| HostError::failed("size the VM", m))?,
    };
    Ok(VmShape {
        cpus: wanted.cpus.clamp(1, cores.max(1)),
        memory_mib: wanted.memory_mib.min(memory_mib / 2).max(512),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aib_defaults_and_case_insensitivity() {
        assert_eq!(
            shape_of("Standard_D1_v2"),
            Ok(VmShape {
                cpus: 1,
                memory_mib: 3584
            })
        );
        assert_eq!(
            shape_of("standard_d2ds_v4"),
            Ok(VmShape {
                cpus: 2,
                memory_mib: 8192
            })
        );
        let err = shape_of("Standard_Z9").unwrap_err();
        assert!(err.contains("in the host configuration"), "{err}");
        assert!(
            err.contains("unknown vmSize 'Standard_Z9'") && err.contains("Standard_D2s_v3"),
            "{err}"
        );
    }

    #[test]
    fn shapes_are_bounded_by_the_machine() {
        let profile = VmProfile::default();
        let gen1 = shape_for(None, &profile, HyperVGeneration::V1, 2, 4096).unwrap();
        assert_eq!(
            gen1,
            VmShape {
                cpus: 1,
                memory_mib: 2048
            }
        );
        let fixed = VmShape {
            cpus: 8,
            memory_mib: 256,
        };
        let shape = shape_for(Some(fixed), &profile, HyperVGeneration::V2, 2, 4096).unwrap();
        assert_eq!(
            shape,
            VmShape {
                cpus: 2,
                memory_mib: 512
            }
        );
    }
}
