//! How a team tests its image pipeline without a VM: its own template on the mock host,
//! with the guest's answers scripted. Run with `cargo test --example pipeline_test`.

fn main() {
    println!("run me with: cargo test --example pipeline_test");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use imagebuilder::core::distribute::InMemoryTargets;
    use imagebuilder::core::engine::{Engine, RunOptions};
    use imagebuilder::core::environment::Environment;
    use imagebuilder::core::run::RunState;
    use imagebuilder::core::source::{InMemoryImageStore, SourceResolver};
    use imagebuilder::drivers::mock::{MockBuildHost, MockResponse};
    use imagebuilder::template::{parse_document, ParseOptions};

    #[tokio::test]
    async fn a_failing_motd_check_stops_the_release() {
        let template = include_str!("templates/platform-image-to-vhd.json");
        let template = parse_document(template, &ParseOptions::default())
            .unwrap()
            .templates
            .remove(0);
        let host = MockBuildHost::new();
        host.on_exec("grep -q imagebuilder /etc/motd", MockResponse::exit(1)); // the validator fails
        let catalog = Environment::embedded_default("/state".as_ref()).catalog();
        let source = SourceResolver::new(
            Arc::new(catalog),
            Arc::new(InMemoryImageStore::new()),
            Arc::new(InMemoryImageStore::new()),
        );
        let targets = InMemoryTargets::new();
        let engine = Engine::new(
            Arc::new(host.clone()),
            Arc::new(source),
            Arc::new(targets.clone()),
        );
        let report = engine
            .run(
                &template,
                RunOptions::new(std::env::temp_dir().join("pipeline-test")),
            )
            .await;
        assert_eq!(report.run_state, RunState::Failed);
        assert!(targets.names().is_empty(), "nothing was published");
        assert!(host.live_vms().is_empty(), "no VM leaked");
    }
}
