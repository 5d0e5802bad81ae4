//! The text of a VM's cloud-init NoCloud seed: `user-data` and `meta-data`.
//!
//! The values come from the host configuration (the build user's name), the engine (the VM
//! id, from the template's name) and ssh-keygen. None may add a key or a line of its own:
//! each is checked (line breaks and other control characters are refused) and then written
//! as a double-quoted YAML scalar (the private host key as an indented block), so a `: `, a
//! `#` or a YAML word such as `null` stays part of its value. Anything a check refuses is a
//! [`SeedTextError`](crate::seed_text::SeedTextError), never a seed that means something
//! else.
//!
//! Public (hidden) only so that the `seed_user_data` fuzz target can reach it; not a stable
//! API.

use std::fmt;

/// What a seed is made from.
#[derive(Debug, Clone, Copy)]
pub struct SeedInputs<'a> {
    /// `instance-id` in meta-data: a new id makes cloud-init treat the boot as a new instance.
    pub instance_id: &'a str,
    /// The build user's name.
    pub user: &'a str,
    /// The build user's public key line (OpenSSH format).
    pub client_public_key: &'a str,
    /// The host's private key (OpenSSH PEM-like format, several lines).
    pub host_private_key: &'a str,
    /// The host's public key line.
    pub host_public_key: &'a str,
}

/// The two files of a NoCloud seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedText {
    /// `user-data`: a `#cloud-config` document.
    pub user_data: String,
    /// `meta-data`.
    pub meta_data: String,
}

/// A seed input that cannot be written safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedTextError {
    /// Which input: `user`, `instance id`, `client public key`, `host private key` or
    /// `host public key`.
    pub input: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for SeedTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the seed's {} {}", self.input, self.reason)
    }
}

impl std::error::Error for SeedTextError {}

/// Longest user name `useradd` accepts.
const MAX_USER: usize = 32;
/// Longest instance id or key line written.
const MAX_LINE: usize = 4096;

/// Builds `user-data` (one sudo user with the client key; the given host key instead of
/// generated ones) and `meta-data`.
///
/// # Errors
/// A [`SeedTextError`] when the user name is not a portable Linux user name
/// (`[a-z_][a-z0-9_-]{0,31}`), when the instance id or a public key is empty, longer than
/// 4096 bytes, or holds anything but printable ASCII (a line break, a tab, a control or
/// non-ASCII character), or when a line of the private key does.
pub fn seed_text(inputs: &SeedInputs<'_>) -> Result<SeedText, SeedTextError> {
    let user = user_name(inputs.user)?;
    let instance_id = one_line("instance id", inputs.instance_id)?;
    let client = one_line("client public key", inputs.client_public_key.trim())?;
    let host = one_line("host public key", inputs.host_public_key.trim())?;
    let private = block("host private key", inputs.host_private_key)?;
    let user_data = format!(
        "#cloud-config\n\
         users:\n\
         \x20 - name: {user}\n\
         \x20   sudo: ALL=(ALL) NOPASSWD:ALL\n\
         \x20   shell: /bin/sh\n\
         \x20   lock_passwd: true\n\
         \x20   ssh_authorized_keys:\n\
         \x20     - {client}\n\
         ssh_pwauth: false\n\
         ssh_deletekeys: true\n\
         ssh_genkeytypes: []\n\
         ssh_keys:\n\
         \x20 ed25519_private: |\n\
         {private}\
         \x20 ed25519_public: {host}\n",
        user = quoted(user),
        client = quoted(client),
        host = quoted(host),
    );
    let meta_data = format!(
        "instance-id: {}\nlocal-hostname: imagebuilder\n",
        quoted(instance_id)
    );
    Ok(SeedText {
        user_data,
        meta_data,
    })
}

fn refuse(input: &'static str, reason: &'static str) -> SeedTextError {
    SeedTextError { input, reason }
}

fn user_name(user: &str) -> Result<&str, SeedTextError> {
    let mut bytes = user.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    if !first_ok
        || user.len() > MAX_USER
        || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(refuse(
            "user",
            "is not a portable Linux user name ([a-z_][a-z0-9_-]{0,31})",
        ));
    }
    Ok(user)
}

/// Printable ASCII: no line break YAML knows (`\n`, `\r`, NEL, LS, PS), no tab, no control.
fn printable(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn one_line<'a>(input: &'static str, text: &'a str) -> Result<&'a str, SeedTextError> {
    if text.is_empty() {
        Err(refuse(input, "is empty"))
    } else if text.len() > MAX_LINE {
        Err(refuse(input, "is longer than 4096 bytes"))
    } else if !printable(text) {
        Err(refuse(
            input,
            "holds a line break, a tab, a control or a non-ASCII character",
        ))
    } else {
        Ok(text)
    }
}

/// `text` as a YAML double-quoted scalar; `text` is printable ASCII, so only `"` and `\`
/// need escaping.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The lines of `text` indented by four spaces, for a `|` block under a key indented by two.
/// A line starting with a space would change the block's detected indentation, so it is
/// refused like any character that is not printable ASCII.
fn block(input: &'static str, text: &str) -> Result<String, SeedTextError> {
    if text.trim().is_empty() {
        return Err(refuse(input, "is empty"));
    }
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.lines() {
        if !printable(line) {
            return Err(refuse(
                input,
                "holds a tab, a carriage return, a control or a non-ASCII character",
            ));
        }
        if line.starts_with(' ') {
            return Err(refuse(input, "has a line starting with a space"));
        }
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(user: &'a str, instance_id: &'a str) -> SeedInputs<'a> {
        SeedInputs {
            instance_id,
            user,
            client_public_key: "ssh-ed25519 AAAC client\n",
            host_private_key: "-----BEGIN X-----\nabc\n-----END X-----\n",
            host_public_key: "ssh-ed25519 AAAH host\n",
        }
    }

    #[test]
    fn user_data_quotes_values_and_indents_the_host_key_as_a_block() {
        let text = seed_text(&inputs("builder", "vm-1")).unwrap();
        assert_eq!(
            text.user_data,
            "#cloud-config\nusers:\n  - name: \"builder\"\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    \
             shell: /bin/sh\n    lock_passwd: true\n    ssh_authorized_keys:\n      - \
             \"ssh-ed25519 AAAC client\"\nssh_pwauth: false\nssh_deletekeys: true\n\
             ssh_genkeytypes: []\nssh_keys:\n  ed25519_private: |\n    -----BEGIN X-----\n    \
             abc\n    -----END X-----\n  ed25519_public: \"ssh-ed25519 AAAH host\"\n"
        );
        assert_eq!(
            text.meta_data,
            "instance-id: \"vm-1\"\nlocal-hostname: imagebuilder\n"
        );
    }

    #[test]
    fn instance_ids_cannot_add_keys_and_are_quoted() {
        let text = seed_text(&inputs("builder", "a\"b\\c: #d")).unwrap();
        assert_eq!(
            text.meta_data,
            "instance-id: \"a\\\"b\\\\c: #d\"\nlocal-hostname: imagebuilder\n"
        );
        for bad in [
            "x\nlocal-hostname: evil",
            "x\rk: v",
            "x\u{2028}k: v",
            "",
            "\t",
        ] {
            let err = seed_text(&inputs("builder", bad)).unwrap_err();
            assert_eq!(err.input, "instance id", "{bad:?}");
        }
    }

    #[test]
    fn user_names_are_portable_linux_names_only() {
        for good in ["builder", "_b", "b-1_x", &"a".repeat(32)] {
            assert!(seed_text(&inputs(good, "vm")).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Builder",
            "1b",
            "-b",
            "b\n  - name: root",
            "b: x",
            "null\n",
            &"a".repeat(33),
        ] {
            let err = seed_text(&inputs(bad, "vm")).unwrap_err();
            assert_eq!(err.input, "user", "{bad:?}");
        }
    }

    #[test]
    fn keys_cannot_leave_their_scalar_or_block() {
        let mut i = inputs("builder", "vm");
        i.client_public_key = "ssh-ed25519 A\n      - ssh-ed25519 EVIL";
        assert_eq!(seed_text(&i).unwrap_err().input, "client public key");
        let mut i = inputs("builder", "vm");
        i.host_private_key = "-----BEGIN X-----\rssh_pwauth: true\n";
        assert_eq!(seed_text(&i).unwrap_err().input, "host private key");
        let mut i = inputs("builder", "vm");
        i.host_private_key = "  indented\nssh_pwauth: true\n";
        assert_eq!(seed_text(&i).unwrap_err().input, "host private key");
        let mut i = inputs("builder", "vm");
        i.host_public_key = "";
        assert_eq!(seed_text(&i).unwrap_err().input, "host public key");
    }
}
