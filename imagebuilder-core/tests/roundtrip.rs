//! parse → serialize → parse is the identity for generated valid templates.

use std::collections::BTreeMap;

use imagebuilder_core::template::model::*;
use imagebuilder_core::template::rules::DurationText;
use imagebuilder_core::template::{parse_document, ApiVersion, ParseOptions};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

const SUB: &str = "/subscriptions/0000-1111/resourceGroups";

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,15}"
}

fn text() -> impl Strategy<Value = String> {
    // Any printable text, quotes and backslashes included, to exercise JSON escaping.
    "[ -~]{1,24}"
}

fn sha256() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[0-9a-f]{64}", "[0-9A-F]{64}"]
}

fn tags() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(name(), text(), 0..3)
}

fn pick<T: WireEnum + std::fmt::Debug>() -> impl Strategy<Value = T> {
    proptest::sample::select(T::VARIANTS.iter().map(|(_, v)| *v).collect::<Vec<_>>())
}

fn script() -> impl Strategy<Value = Script> {
    prop_oneof![
        "https://example\\.test/[a-z]{1,8}\\.sh".prop_map(Script::ScriptUri),
        vec(text(), 1..4).prop_map(Script::Inline),
    ]
}

fn shell() -> impl Strategy<Value = ShellStep> {
    (option::of(text()), script(), sha256(), any::<bool>()).prop_map(
        |(name, script, sha256_checksum, sensitive)| ShellStep {
            name,
            script,
            sha256_checksum,
            sensitive,
        },
    )
}

fn powershell() -> impl Strategy<Value = PowerShellStep> {
    (
        option::of(text()),
        script(),
        sha256(),
        any::<(bool, bool, bool)>(),
        vec(-5i64..300_000, 1..3),
    )
        .prop_map(
            |(name, script, sha256_checksum, (elevated, system, sensitive), codes)| {
                PowerShellStep {
                    name,
                    script,
                    sha256_checksum,
                    sensitive,
                    run_elevated: elevated,
                    run_as_system: elevated && system,
                    valid_exit_codes: codes,
                }
            },
        )
}

fn file() -> impl Strategy<Value = FileStep> {
    (option::of(text()), "[a-z]{1,8}", sha256()).prop_map(|(name, file, sha256_checksum)| {
        FileStep {
            name,
            source_uri: format!("https://example.test/{file}"),
            destination: format!("/tmp/{file}"),
            sha256_checksum,
        }
    })
}

fn customizer() -> impl Strategy<Value = CustomizerSpec> {
    let timeouts = proptest::sample::select(vec!["5m", "2h", "1h30m", "90s", "0"]);
    prop_oneof![
        shell().prop_map(CustomizerSpec::Shell),
        powershell().prop_map(CustomizerSpec::PowerShell),
        file().prop_map(CustomizerSpec::File),
        (
            option::of(text()),
            text(),
            "[ -~]{0,10}",
            timeouts,
            any::<bool>()
        )
            .prop_map(|(name, cmd, check, t, windows)| {
                let step = RestartStep {
                    name,
                    restart_command: cmd,
                    restart_check_command: check,
                    restart_timeout: DurationText::parse(t).unwrap(),
                };
                if windows {
                    CustomizerSpec::WindowsRestart(step)
                } else {
                    CustomizerSpec::Restart(step)
                }
            }),
        (
            option::of(text()),
            "[ -~]{0,10}",
            vec(text(), 0..3),
            0u32..2000
        )
            .prop_map(|(name, search_criteria, filters, update_limit)| {
                CustomizerSpec::WindowsUpdate(WindowsUpdateStep {
                    name,
                    search_criteria,
                    filters,
                    update_limit,
                })
            }),
    ]
}

fn validation() -> impl Strategy<Value = Validation> {
    let validator = prop_oneof![
        shell().prop_map(ValidatorSpec::Shell),
        powershell().prop_map(ValidatorSpec::PowerShell),
        file().prop_map(ValidatorSpec::File),
    ];
    (any::<bool>(), any::<bool>(), vec(validator, 0..3)).prop_map(|(cont, only, v)| Validation {
        continue_distribute_on_failure: cont,
        source_validation_only: only,
        in_vm_validations: v,
    })
}

fn source() -> impl Strategy<Value = SourceSpec> {
    let version = prop_oneof![
        Just("latest".to_owned()),
        "[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,9}"
    ];
    let plan = (name(), name(), name()).prop_map(|(a, b, c)| PlanInfo {
        plan_name: a,
        plan_product: b,
        plan_publisher: c,
    });
    let safe_security = proptest::sample::select(vec![
        SecurityType::Standard,
        SecurityType::TrustedLaunchSupported,
        SecurityType::ConfidentialVmSupported,
    ]);
    prop_oneof![
        (
            name(),
            name(),
            name(),
            version,
            option::of(plan),
            option::of(name())
        )
            .prop_map(
                |(publisher, offer, sku, version, plan_info, exact_version)| {
                    SourceSpec::PlatformImage(PlatformImageSource {
                        publisher,
                        offer,
                        sku,
                        version,
                        plan_info,
                        exact_version,
                    })
                }
            ),
        name().prop_map(|n| SourceSpec::ManagedImage(ManagedImageSource {
            image_id: format!("{SUB}/rg/providers/Microsoft.Compute/images/{n}"),
        })),
        (
            name(),
            prop_oneof![Just("latest".to_owned()), Just("1.0.0".to_owned())],
            option::of(name())
        )
            .prop_map(|(n, v, exact_version)| {
                SourceSpec::SharedImageVersion(SharedImageVersionSource {
                    image_version_id: format!(
                        "{SUB}/rg/providers/Microsoft.Compute/galleries/g/images/{n}/versions/{v}"
                    ),
                    exact_version,
                })
            }),
        (
            name(),
            option::of(pick::<DiskFormat>()),
            sha256(),
            option::of(pick::<OsType>()),
            option::of(pick::<HyperVGeneration>()),
            option::of(safe_security)
        )
            .prop_map(
                |(n, format, sha256_checksum, os_type, hyper_v_generation, security_type)| {
                    SourceSpec::DiskImage(DiskImageSource {
                        uri: format!("file:///images/{n}.img"),
                        format,
                        sha256_checksum,
                        os_type,
                        hyper_v_generation,
                        security_type,
                    })
                }
            ),
    ]
}

/// Gives each target a runOutputName unique by its position, as validation requires.
fn with_unique_name(mut target: DistributorSpec, index: usize) -> DistributorSpec {
    let name = match &mut target {
        DistributorSpec::ManagedImage(t) => &mut t.run_output_name,
        DistributorSpec::SharedImage(t) => &mut t.run_output_name,
        DistributorSpec::Vhd(t) => &mut t.run_output_name,
        DistributorSpec::ObjectStore(t) => &mut t.run_output_name,
    };
    name.push_str(&index.to_string());
    target
}

fn distributor(newest: bool) -> impl Strategy<Value = DistributorSpec> {
    let region =
        (name(), 1u32..5, pick::<StorageAccountType>()).prop_map(|(name, count, storage)| {
            TargetRegion {
                name,
                replica_count: count,
                storage_account_type: storage,
            }
        });
    let replication = prop_oneof![
        Just((None, None, None)),
        vec(region, 1..3).prop_map(|r| (Some(r), None, None)),
        (vec(name(), 1..3), option::of(pick::<StorageAccountType>())).prop_map(|(r, s)| (
            None,
            Some(r),
            s
        )),
    ];
    let versioning = option::of(prop_oneof![
        (-1i64..5).prop_map(|major| Versioning::Latest { major }),
        Just(Versioning::Source),
    ]);
    let mode = if newest {
        option::of(pick::<ReplicationMode>()).boxed()
    } else {
        Just(None).boxed()
    };
    prop_oneof![
        (name(), tags()).prop_map(|(n, tags)| {
            DistributorSpec::ManagedImage(ManagedImageTarget {
                run_output_name: "managed".into(),
                artifact_tags: tags,
                image_id: format!("{SUB}/rg/providers/Microsoft.Compute/images/{n}"),
                location: "westeurope".into(),
            })
        }),
        (
            name(),
            tags(),
            replication,
            any::<bool>(),
            versioning,
            mode,
            any::<bool>(),
            option::of(Just("2031-12-31".to_owned()))
        )
            .prop_map(
                |(n, tags, (target, repl, storage), exclude, versioning, mode, explicit, eol)| {
                    let version = if explicit { "/versions/1.0.0" } else { "" };
                    DistributorSpec::SharedImage(SharedImageTarget {
                        run_output_name: "gallery".into(),
                        artifact_tags: tags,
                        gallery_image_id: format!(
                            "{SUB}/rg/providers/Microsoft.Compute/galleries/g/images/{n}{version}"
                        ),
                        target_regions: target,
                        replication_regions: repl,
                        storage_account_type: storage,
                        exclude_from_latest: exclude,
                        versioning,
                        replication_mode: mode,
                        end_of_life_date: eol,
                    })
                }
            ),
        (
            tags(),
            prop_oneof![Just(String::new()), Just("file:///out/x.vhd".to_owned())],
            any::<bool>()
        )
            .prop_map(|(tags, uri, sha256)| {
                DistributorSpec::Vhd(VhdTarget {
                    run_output_name: "vhd".into(),
                    artifact_tags: tags,
                    uri,
                    sha256,
                })
            }),
        (tags(), pick::<OutputFormat>(), any::<bool>()).prop_map(|(tags, format, sha256)| {
            DistributorSpec::ObjectStore(ObjectStoreTarget {
                run_output_name: "object".into(),
                artifact_tags: tags,
                uri: "s3://bucket/images/x".into(),
                format,
                sha256,
            })
        }),
    ]
}

fn subnet(n: &str) -> String {
    format!("{SUB}/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/{n}")
}

fn vm_profile() -> impl Strategy<Value = VmProfile> {
    let vnet = option::of(
        (any::<bool>(), any::<bool>(), "[A-Za-z0-9_]{0,8}").prop_map(
            |(with_aci, with_subnet, proxy)| {
                let with_aci = with_aci && with_subnet;
                VnetConfig {
                    subnet_id: if with_subnet {
                        subnet("build")
                    } else {
                        String::new()
                    },
                    container_instance_subnet_id: if with_aci {
                        subnet("aci")
                    } else {
                        String::new()
                    },
                    proxy_vm_size: if with_aci { String::new() } else { proxy },
                }
            },
        ),
    );
    let identity = name().prop_map(|n| {
        format!("{SUB}/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}")
    });
    ("[A-Za-z0-9_]{0,16}", 0u32..4096, vec(identity, 0..2), vnet).prop_map(
        |(vm_size, os_disk_size_gb, user_assigned_identities, vnet_config)| VmProfile {
            vm_size,
            os_disk_size_gb,
            user_assigned_identities,
            vnet_config,
        },
    )
}

fn optimize(newest: bool) -> impl Strategy<Value = Optimize> {
    let workload = (
        pick::<FeatureState>(),
        prop_oneof![
            Just(String::new()),
            Just("https://example.test/w.sh".to_owned())
        ],
        sha256(),
    )
        .prop_map(
            |(state, script_uri, sha256_checksum)| WorkloadOptimization {
                state,
                script_uri,
                sha256_checksum,
            },
        );
    let workload = if newest {
        option::of(workload).boxed()
    } else {
        Just(None).boxed()
    };
    (option::of(pick::<FeatureState>()), workload).prop_map(|(boot, workload)| Optimize {
        vm_boot: boot.map(|state| VmBootOptimization { state }),
        workload,
    })
}

fn properties(version: ApiVersion) -> impl Strategy<Value = ImageTemplateProperties> {
    // Strict documents must not use fields newer than their version; lenient ones may.
    let newest = !version.is_strict() || version >= ApiVersion::V2025_10_01;
    let since_2024 = !version.is_strict() || version >= ApiVersion::V2024_02_01;
    let error_handling =
        option::of(
            (pick::<OnError>(), pick::<OnError>()).prop_map(|(c, v)| ErrorHandling {
                on_customizer_error: c,
                on_validation_error: v,
            }),
        );
    let auto_run = if since_2024 {
        option::of(pick::<FeatureState>().prop_map(|state| AutoRun { state })).boxed()
    } else {
        Just(None).boxed()
    };
    let disks = if newest {
        vec((0u32..1024).prop_map(|size_gb| DataDisk { size_gb }), 0..3).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    let managed_tags = if since_2024 {
        tags().boxed()
    } else {
        Just(BTreeMap::new()).boxed()
    };
    (
        (
            source(),
            vec(customizer(), 0..4),
            option::of(validation()),
            vec(distributor(newest), 1..4),
        ),
        (0u32..=960, vm_profile(), option::of(name()), error_handling),
        (option::of(optimize(newest)), auto_run, managed_tags, disks),
    )
        .prop_map(
            |(
                (source, customize, validate, targets),
                (timeout, vm_profile, staging, error_handling),
                (optimize, auto_run, managed_resource_tags, additional_data_disks),
            )| {
                let customize = fitting_os(&source, customize);
                ImageTemplateProperties {
                    source,
                    customize,
                    validate,
                    distribute: targets
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| with_unique_name(t, i))
                        .collect(),
                    build_timeout_in_minutes: timeout,
                    vm_profile,
                    staging_resource_group: staging.map(|rg| format!("{SUB}/{rg}")),
                    error_handling,
                    optimize,
                    auto_run,
                    managed_resource_tags,
                    additional_data_disks,
                }
            },
        )
}

/// Drops steps for the other operating system when the source says which it is (the parser
/// refuses them as UnsupportedCustomizerType).
fn fitting_os(source: &SourceSpec, steps: Vec<CustomizerSpec>) -> Vec<CustomizerSpec> {
    let SourceSpec::DiskImage(DiskImageSource {
        os_type: Some(os), ..
    }) = source
    else {
        return steps;
    };
    steps
        .into_iter()
        .filter(|step| match step {
            CustomizerSpec::Shell(_) | CustomizerSpec::Restart(_) => *os == OsType::Linux,
            CustomizerSpec::PowerShell(_)
            | CustomizerSpec::WindowsRestart(_)
            | CustomizerSpec::WindowsUpdate(_) => *os == OsType::Windows,
            CustomizerSpec::File(_) => true,
        })
        .collect()
}

fn template() -> impl Strategy<Value = ImageTemplate> {
    let versions: Vec<ApiVersion> = ApiVersion::ALL.to_vec();
    proptest::sample::select(versions).prop_flat_map(|version| {
        let identity = option::of(prop_oneof![
            name().prop_map(|n| Identity {
                identity_type: IdentityType::UserAssigned,
                user_assigned_identities: vec![format!(
                    "{SUB}/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}"
                )],
            }),
            Just(Identity {
                identity_type: IdentityType::None,
                user_assigned_identities: Vec::new(),
            }),
        ]);
        (
            option::of(name()),
            option::of(name()),
            tags(),
            identity,
            properties(version),
        )
            .prop_map(
                move |(name, location, tags, identity, properties)| ImageTemplate {
                    secrets: Vec::new(),
                    api_version: version,
                    name,
                    location,
                    tags,
                    identity,
                    properties,
                },
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_serialize_parse_is_identity(template in template()) {
        let text = serde_json::to_string_pretty(&template).unwrap();
        let parsed = parse_document(&text, &ParseOptions::default());
        let doc = match parsed {
            Ok(doc) => doc,
            Err(diags) => {
                let lines: Vec<String> = diags.all().iter().map(ToString::to_string).collect();
                return Err(TestCaseError::fail(format!("{}\n{text}", lines.join("\n"))));
            }
        };
        prop_assert_eq!(&doc.templates, &vec![template.clone()]);
        // And once more from the re-serialized form.
        let again = serde_json::to_string_pretty(&doc.templates[0]).unwrap();
        prop_assert_eq!(again, text);
    }
}
