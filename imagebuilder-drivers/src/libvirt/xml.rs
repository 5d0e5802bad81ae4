//! The XML libvirt is given: a transient domain, the volumes of one VM, the pool made on
//! demand. Built as text with every value escaped; libvirt validates it.

use std::fmt::Write as _;

use imagebuilder_core::template::model::{DiskFormat, HyperVGeneration};

use super::LibvirtNetwork;
use crate::vmkit::sizes::VmShape;

/// `text` with the five XML special characters escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A directory pool at `path`.
pub(crate) fn dir_pool(name: &str, path: &str) -> String {
    format!(
        "<pool type='dir'><name>{}</name><target><path>{}</path></target></pool>",
        escape(name),
        escape(path)
    )
}

/// A volume of `capacity` bytes in `format`, optionally over a backing volume.
pub(crate) fn volume(
    name: &str,
    capacity: u64,
    format: &str,
    backing: Option<(&str, DiskFormat)>,
) -> String {
    let mut xml = format!(
        "<volume><name>{}</name><capacity unit='bytes'>{capacity}</capacity>\
         <allocation unit='bytes'>0</allocation><target><format type='{}'/></target>",
        escape(name),
        escape(format)
    );
    if let Some((path, backing_format)) = backing {
        let _ = write!(
            xml,
            "<backingStore><path>{}</path><format type='{}'/></backingStore>",
            escape(path),
            backing_format.qemu_name()
        );
    }
    xml.push_str("</volume>");
    xml
}

/// The firmware of a Gen2 domain: OVMF code on the hypervisor host and this VM's own vars.
#[derive(Debug, Clone)]
pub(crate) struct Uefi {
    pub(crate) code: String,
    pub(crate) nvram: String,
}

/// Everything a build VM's domain XML says.
#[derive(Debug, Clone)]
pub(crate) struct DomainSpec<'a> {
    pub(crate) name: &'a str,
    /// `kvm`, `qemu` (TCG) or whatever the driver offers (`test`).
    pub(crate) domain_type: &'a str,
    pub(crate) generation: HyperVGeneration,
    pub(crate) shape: VmShape,
    pub(crate) pool: &'a str,
    pub(crate) disk_volume: &'a str,
    pub(crate) seed_volume: &'a str,
    pub(crate) uefi: Option<Uefi>,
    pub(crate) network: &'a LibvirtNetwork,
    /// The loopback port forwarded to the guest's SSH, with [`LibvirtNetwork::User`].
    pub(crate) ssh_port: u16,
}

/// QEMU's own namespace, for the user-mode network with a port forward.
const QEMU_NS: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

impl DomainSpec<'_> {
    pub(crate) fn to_xml(&self) -> String {
        let user_net = matches!(self.network, LibvirtNetwork::User);
        let mut xml = String::new();
        let _ = write!(xml, "<domain type='{}'", escape(self.domain_type));
        if user_net {
            let _ = write!(xml, " xmlns:qemu='{QEMU_NS}'");
        }
        let machine = match self.generation {
            HyperVGeneration::V1 => "pc",
            HyperVGeneration::V2 => "q35",
        };
        let _ = write!(
            xml,
            ">\n  <name>{}</name>\n  <description>imagebuilder build VM; removed with its volumes when the build ends</description>\n  \
             <memory unit='MiB'>{}</memory>\n  <vcpu>{}</vcpu>\n  <os>\n    \
             <type arch='x86_64' machine='{machine}'>hvm</type>\n",
            escape(self.name),
            self.shape.memory_mib,
            self.shape.cpus
        );
        if let Some(uefi) = &self.uefi {
            let _ = write!(
                xml,
                "    <loader readonly='yes' type='pflash'>{}</loader>\n    <nvram>{}</nvram>\n",
                escape(&uefi.code),
                escape(&uefi.nvram)
            );
        }
        xml.push_str("    <boot dev='hd'/>\n  </os>\n");
        // ACPI lets the guest power itself off and lets libvirt ask it to.
        xml.push_str("  <features><acpi/><apic/></features>\n");
        match self.domain_type {
            "kvm" => xml.push_str("  <cpu mode='host-passthrough'/>\n"),
            "qemu" => xml.push_str("  <cpu mode='maximum'/>\n"),
            _ => {}
        }
        xml.push_str(
            "  <clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n  \
             <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n  <devices>\n",
        );
        let _ = write!(
            xml,
            "    <disk type='volume' device='disk'>\n      \
             <driver name='qemu' type='qcow2' cache='writeback' discard='unmap'/>\n      \
             <source pool='{pool}' volume='{disk}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n    \
             <disk type='volume' device='disk'>\n      <driver name='qemu' type='raw'/>\n      \
             <source pool='{pool}' volume='{seed}'/>\n      <target dev='vdb' bus='virtio'/>\n      <readonly/>\n    </disk>\n",
            pool = escape(self.pool),
            disk = escape(self.disk_volume),
            seed = escape(self.seed_volume),
        );
        match self.network {
            LibvirtNetwork::User => {}
            LibvirtNetwork::Network(name) => {
                let _ = writeln!(
                    xml,
                    "    <interface type='network'><source network='{}'/><model type='virtio'/></interface>",
                    escape(name)
                );
            }
            LibvirtNetwork::Bridge(name) => {
                let _ = writeln!(
                    xml,
                    "    <interface type='bridge'><source bridge='{}'/><model type='virtio'/></interface>",
                    escape(name)
                );
            }
        }
        xml.push_str(
            "    <serial type='pty'><target port='0'/></serial>\n    \
             <console type='pty'><target type='serial' port='0'/></console>\n    \
             <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>\n    \
             <memballoon model='none'/>\n  </devices>\n",
        );
        if user_net {
            // libvirt's own user-mode interface forwards ports only with the passt backend
            // (libvirt 9.0+ and the passt package); QEMU's slirp with hostfwd needs neither.
            // The NIC gets a slot of its own: QEMU realizes it before libvirt's devices,
            // which would otherwise find their addresses taken.
            let bus = match self.generation {
                HyperVGeneration::V1 => "pci.0",
                HyperVGeneration::V2 => "pcie.0",
            };
            let _ = write!(
                xml,
                "  <qemu:commandline>\n    <qemu:arg value='-netdev'/>\n    \
                 <qemu:arg value='user,id=ibnet0,hostfwd=tcp:127.0.0.1:{}-:22'/>\n    \
                 <qemu:arg value='-device'/>\n    \
                 <qemu:arg value='virtio-net-pci,netdev=ibnet0,bus={bus},addr=0x10'/>\n  \
                 </qemu:commandline>\n",
                self.ssh_port
            );
        }
        xml.push_str("</domain>\n");
        xml
    }
}

/// The domain types the capabilities XML offers for x86_64 guests, in order; when it offers
/// none for x86_64 (libvirt's test driver lists only i686), those of any guest.
pub(crate) fn domain_types(capabilities: &str) -> Vec<String> {
    let guests: Vec<&str> = capabilities
        .split("<guest>")
        .skip(1)
        .map(|g| g.split("</guest>").next().unwrap_or_default())
        .collect();
    let x86_64: Vec<&str> = guests
        .iter()
        .copied()
        .filter(|g| g.contains("<arch name='x86_64'>") || g.contains("<arch name=\"x86_64\">"))
        .collect();
    let types = types_of(&x86_64);
    if types.is_empty() {
        types_of(&guests)
    } else {
        types
    }
}

/// The `<domain type=...>` values of `guests`, each once, in order.
fn types_of(guests: &[&str]) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for guest in guests {
        for part in guest.split("<domain type=").skip(1) {
            let quote = part.chars().next().unwrap_or('\'');
            if let Some(value) = part[1..].split(quote).next() {
                if !types.iter().any(|t| t == value) {
                    types.push(value.to_owned());
                }
            }
        }
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(network: &LibvirtNetwork, generation: HyperVGeneration) -> DomainSpec<'_> {
        DomainSpec {
            name: "imagebuilder-run1-build",
            domain_type: "qemu",
            generation,
            shape: VmShape {
                cpus: 2,
                memory_mib: 1024,
            },
            pool: "imagebuilder",
            disk_volume: "imagebuilder-run1-build-disk",
            seed_volume: "imagebuilder-run1-build-seed",
            uefi: (generation == HyperVGeneration::V2).then(|| Uefi {
                code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
                nvram: "/pool/imagebuilder-run1-build-nvram".into(),
            }),
            network,
            ssh_port: 2222,
        }
    }

    #[test]
    fn gen1_user_network_forwards_ssh_on_loopback() {
        let xml = spec(&LibvirtNetwork::User, HyperVGeneration::V1).to_xml();
        assert!(xml.starts_with("<domain type='qemu' xmlns:qemu="), "{xml}");
        assert!(xml.contains("machine='pc'"), "{xml}");
        assert!(!xml.contains("<loader"), "{xml}");
        assert!(xml.contains("hostfwd=tcp:127.0.0.1:2222-:22"), "{xml}");
        assert!(xml.contains("<features><acpi/>"), "{xml}");
        assert!(xml.contains("<vcpu>2</vcpu>") && xml.contains("<memory unit='MiB'>1024</memory>"));
        assert!(!xml.contains("<interface"), "{xml}");
    }

    #[test]
    fn gen2_has_its_own_nvram_and_named_networks_have_no_forward() {
        let network = LibvirtNetwork::Network("build-net".into());
        let xml = spec(&network, HyperVGeneration::V2).to_xml();
        assert!(xml.contains("machine='q35'"), "{xml}");
        assert!(xml.contains(
            "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"
        ));
        assert!(xml.contains("<nvram>/pool/imagebuilder-run1-build-nvram</nvram>"));
        assert!(xml.contains("<source network='build-net'/>"), "{xml}");
        assert!(!xml.contains("qemu:commandline") && !xml.contains("xmlns:qemu"));
        let bridge = LibvirtNetwork::Bridge("br0".into());
        let xml = spec(&bridge, HyperVGeneration::V1).to_xml();
        assert!(
            xml.contains("<interface type='bridge'><source bridge='br0'/>"),
            "{xml}"
        );
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
        let xml = volume("v'1", 10, "qcow2", Some(("/p/<b>", DiskFormat::Qcow2)));
        assert!(xml.contains("<name>v&apos;1</name>") && xml.contains("<path>/p/&lt;b&gt;</path>"));
        assert!(
            xml.contains("<format type='qcow2'/></backingStore>"),
            "{xml}"
        );
    }

    #[test]
    fn domain_types_of_x86_64_guests() {
        let caps = "<capabilities><guest><os_type>hvm</os_type><arch name='i686'><domain type='test'/></arch></guest>\
                    <guest><os_type>hvm</os_type><arch name='x86_64'><wordsize>64</wordsize>\
                    <domain type='qemu'/><domain type='kvm'/></arch></guest></capabilities>";
        assert_eq!(domain_types(caps), ["qemu", "kvm"]);
        let test_driver = "<guest><arch name='i686'><domain type='test'/></arch></guest>";
        assert_eq!(domain_types(test_driver), ["test"]);
    }
}
