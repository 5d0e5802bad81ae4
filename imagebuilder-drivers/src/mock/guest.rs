//! The mock guest: answers commands from rules, keeps uploaded files in memory.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use imagebuilder_core::host::{
    ExecRequest, ExecResult, Guest, GuestError, OutputLine, OutputSink, OutputStream,
    RestartOptions,
};

use super::host::{MockBuildHost, MockCall, MockOp};
use super::rules::MockResponse;

/// Directories every mock guest has.
const DIRECTORIES: &[&str] = &[
    "/",
    "/tmp",
    "/etc",
    "/opt",
    "/var",
    "/home",
    "/usr",
    "/root",
    r"c:\",
    r"C:\Windows\Temp",
];

pub(super) struct MockGuest {
    host: MockBuildHost,
    vm_id: String,
    files: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MockGuest {
    pub(super) fn new(host: MockBuildHost, vm_id: String) -> Self {
        Self {
            host,
            vm_id,
            files: Mutex::new(BTreeMap::new()),
        }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `test -f P` and `test -d P` from the uploaded files; `None` for other commands.
    fn file_test(&self, command: &str) -> Option<i32> {
        let (kind, path) = command.strip_prefix("test -")?.split_once(' ')?;
        let path = path.trim().trim_matches('\'');
        let files = self.files();
        let exists = match kind {
            "f" => files.contains_key(path),
            "d" => {
                DIRECTORIES.contains(&path)
                    || files.keys().any(|f| f.starts_with(&format!("{path}/")))
            }
            _ => return None,
        };
        Some(if exists { 0 } else { 1 })
    }

    /// The few commands the mock understands itself, so host-independent checks can run on
    /// it: `true`, `false`, `exit N`, `echo TEXT`, `echo TEXT >&2`, `cat PATH`.
    fn builtin(&self, command: &str, output: &dyn OutputSink) -> Option<ExecResult> {
        let command = command.trim();
        let print = |stream, text: &str| output.line(OutputLine { stream, text });
        let exit_code = match command {
            "true" => 0,
            "false" => 1,
            _ if command.starts_with("exit ") => command[5..].trim().parse().ok()?,
            _ if command.starts_with("echo ") => {
                let text = &command[5..];
                match text.strip_suffix(">&2") {
                    Some(text) => print(OutputStream::Stderr, text.trim().trim_matches('\'')),
                    None => print(OutputStream::Stdout, text.trim().trim_matches('\'')),
                }
                0
            }
            _ if command.starts_with("cat ") => {
                let path = command[4..].trim().trim_matches('\'');
                let contents = self.files().get(path).cloned();
                match contents {
                    Some(bytes) => {
                        for line in String::from_utf8_lossy(&bytes).lines() {
                            print(OutputStream::Stdout, line);
                        }
                        0
                    }
                    None => {
                        print(
                            OutputStream::Stderr,
                            &format!("cat: {path}: No such file or directory"),
                        );
                        1
                    }
                }
            }
            _ => return None,
        };
        Some(ExecResult { exit_code })
    }

    /// An uploaded script the command runs, if any: its lines are played one by one.
    fn script_run_by(&self, command: &str) -> Option<String> {
        let files = self.files();
        files
            .iter()
            .find(|(path, _)| {
                command.contains(&format!("'{path}'")) && !command.starts_with("test ")
            })
            .map(|(_, contents)| String::from_utf8_lossy(contents).into_owned())
    }

    async fn answer(&self, response: &MockResponse, output: &dyn OutputSink) -> ExecResult {
        if !response.delay.is_zero() {
            tokio::time::sleep(response.delay).await;
        }
        if response.panic {
            panic!("the mock guest was told to panic");
        }
        for line in &response.stdout {
            output.line(OutputLine {
                stream: OutputStream::Stdout,
                text: line,
            });
        }
        for line in &response.stderr {
            output.line(OutputLine {
                stream: OutputStream::Stderr,
                text: line,
            });
        }
        ExecResult {
            exit_code: response.exit_code,
        }
    }
}

#[async_trait]
impl Guest for MockGuest {
    async fn exec(
        &self,
        request: &ExecRequest,
        output: &dyn OutputSink,
    ) -> Result<ExecResult, GuestError> {
        self.host
            .enter(MockOp::Exec, "exec")
            .await
            .map_err(|m| GuestError::failed("run a command", m))?;
        self.host.record(MockCall::Exec {
            vm_id: self.vm_id.clone(),
            command: request.command.clone(),
            elevated: request.elevated,
        });
        let rule = self.host.lock().rules.answer(&request.command);
        if let Some(response) = rule {
            return Ok(self.answer(&response, output).await);
        }
        if let Some(code) = self.file_test(&request.command) {
            return Ok(ExecResult { exit_code: code });
        }
        if let Some(result) = self.builtin(&request.command, output) {
            return Ok(result);
        }
        if let Some(script) = self.script_run_by(&request.command) {
            for line in script.lines().filter(|l| !l.starts_with("#!")) {
                let rule = self.host.lock().rules.answer(line);
                if let Some(response) = rule {
                    let result = self.answer(&response, output).await;
                    if !result.success() {
                        return Ok(result);
                    }
                }
            }
        }
        Ok(ExecResult { exit_code: 0 })
    }

    async fn upload(&self, local: &Path, remote: &str) -> Result<(), GuestError> {
        self.host
            .enter(MockOp::Upload, "upload")
            .await
            .map_err(|m| GuestError::failed("upload a file", m))?;
        let contents = tokio::fs::read(local)
            .await
            .map_err(|e| GuestError::Failed {
                operation: format!("read {}", local.display()),
                source: Box::new(e),
            })?;
        self.host.record(MockCall::Upload {
            vm_id: self.vm_id.clone(),
            remote: remote.to_owned(),
            contents: contents.clone(),
        });
        self.files().insert(remote.to_owned(), contents);
        Ok(())
    }

    async fn restart(&self, options: &RestartOptions) -> Result<(), GuestError> {
        self.host
            .enter(MockOp::Restart, "restart")
            .await
            .map_err(|m| GuestError::failed("restart", m))?;
        self.host.record(MockCall::Restart {
            vm_id: self.vm_id.clone(),
            command: options.command.clone(),
        });
        Ok(())
    }
}
