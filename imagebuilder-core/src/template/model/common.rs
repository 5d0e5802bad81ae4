//! Small value types shared by several parts of a template.

use super::wire_enum;

wire_enum! {
    /// `Enabled` / `Disabled`, as used by `optimize` and `autoRun`.
    pub enum FeatureState {
        /// The feature is on.
        Enabled = "Enabled",
        /// The feature is off.
        Disabled = "Disabled",
    }
}

wire_enum! {
    /// Operating system family of an image.
    pub enum OsType {
        /// Linux guests: Shell customizers, SSH.
        Linux = "Linux",
        /// Windows guests: PowerShell customizers.
        Windows = "Windows",
    }
}

wire_enum! {
    /// Hyper-V generation: how the image boots.
    pub enum HyperVGeneration {
        /// BIOS boot from an MBR disk.
        V1 = "V1",
        /// UEFI boot from a GPT disk.
        V2 = "V2",
    }
}

wire_enum! {
    /// Security type of an image or gallery image definition.
    pub enum SecurityType {
        /// No special security features.
        Standard = "Standard",
        /// Can be booted with Trusted Launch; a valid source.
        TrustedLaunchSupported = "TrustedLaunchSupported",
        /// Can be booted as a confidential VM; a valid source.
        ConfidentialVmSupported = "ConfidentialVMSupported",
        /// Both of the above.
        TrustedLaunchAndConfidentialVmSupported = "TrustedLaunchAndConfidentialVmSupported",
        /// Requires Trusted Launch; refused as a source.
        TrustedLaunch = "TrustedLaunch",
        /// Requires a confidential VM; refused as a source.
        ConfidentialVm = "ConfidentialVM",
    }
}

wire_enum! {
    /// Format of a disk image file.
    pub enum DiskFormat {
        /// A plain byte-for-byte disk.
        Raw = "raw",
        /// QEMU copy-on-write v2.
        Qcow2 = "qcow2",
        /// Microsoft virtual hard disk (fixed or dynamic).
        Vhd = "vhd",
    }
}

wire_enum! {
    /// Format of an image file a distributor writes (`ObjectStore` targets, `imagebuilder
    /// convert`).
    pub enum OutputFormat {
        /// A plain byte-for-byte disk.
        Raw = "raw",
        /// QEMU copy-on-write v3.
        Qcow2 = "qcow2",
        /// A fixed VHD, virtual size rounded up to a whole MiB as Azure requires.
        VhdFixed = "vhd",
        /// A dynamic (sparse) VHD.
        VhdDynamic = "vhd-dynamic",
    }
}

impl OutputFormat {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [Self; 4] = [Self::Raw, Self::Qcow2, Self::VhdFixed, Self::VhdDynamic];

    /// The file extension for the format.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
            Self::VhdFixed | Self::VhdDynamic => "vhd",
        }
    }

    /// The disk format a reader of the written file names.
    pub fn disk_format(self) -> DiskFormat {
        match self {
            Self::Raw => DiskFormat::Raw,
            Self::Qcow2 => DiskFormat::Qcow2,
            Self::VhdFixed | Self::VhdDynamic => DiskFormat::Vhd,
        }
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = String;

    /// The exact spelling: `raw`, `qcow2`, `vhd` or `vhd-dynamic`.
    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.to_string() == text)
            .ok_or_else(|| {
                format!(
                    "unknown output format '{text}'; expected one of {}",
                    <Self as super::WireEnum>::expected()
                )
            })
    }
}

impl DiskFormat {
    /// The name QEMU's tools give the format (`qemu-img -f`/`-O`); VHD is `vpc` there.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
            Self::Vhd => "vpc",
        }
    }
}
