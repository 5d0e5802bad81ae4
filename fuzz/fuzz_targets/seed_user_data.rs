//! The NoCloud seed's text from arbitrary inputs: every input is refused or ends in
//! user-data and meta-data that parse as YAML holding exactly the keys we write, each
//! input back as its own value. A user name, an instance id or a key can never add a key,
//! a user or an authorized key of its own.
#![no_main]

use imagebuilder_drivers::seed_text::{seed_text, SeedInputs};
use libfuzzer_sys::fuzz_target;
use serde_norway::Value;

/// Splits the input at NUL bytes into the five inputs (missing ones are empty).
fn fields(text: &str) -> [&str; 5] {
    let mut parts = text.splitn(5, '\0');
    std::array::from_fn(|_| parts.next().unwrap_or(""))
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_mapping()
        .expect("a mapping")
        .keys()
        .map(|k| k.as_str().expect("string keys"))
        .collect();
    keys.sort_unstable();
    keys
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let [instance_id, user, client, host_private, host_public] = fields(text);
    let inputs = SeedInputs {
        instance_id,
        user,
        client_public_key: client,
        host_private_key: host_private,
        host_public_key: host_public,
    };
    let Ok(seed) = seed_text(&inputs) else {
        return;
    };

    let meta: Value = serde_norway::from_str(&seed.meta_data)
        .unwrap_or_else(|e| panic!("meta-data does not parse: {e}\n{}", seed.meta_data));
    assert_eq!(
        keys(&meta),
        ["instance-id", "local-hostname"],
        "{}",
        seed.meta_data
    );
    assert_eq!(meta["instance-id"].as_str(), Some(instance_id));
    assert_eq!(meta["local-hostname"].as_str(), Some("imagebuilder"));

    assert!(seed.user_data.starts_with("#cloud-config\n"));
    let data: Value = serde_norway::from_str(&seed.user_data)
        .unwrap_or_else(|e| panic!("user-data does not parse: {e}\n{}", seed.user_data));
    assert_eq!(
        keys(&data),
        [
            "ssh_deletekeys",
            "ssh_genkeytypes",
            "ssh_keys",
            "ssh_pwauth",
            "users"
        ],
        "{}",
        seed.user_data
    );
    assert_eq!(data["ssh_pwauth"].as_bool(), Some(false));
    assert_eq!(data["ssh_deletekeys"].as_bool(), Some(true));
    let users = data["users"].as_sequence().expect("a list of users");
    assert_eq!(users.len(), 1, "{}", seed.user_data);
    let build_user = &users[0];
    assert_eq!(
        keys(build_user),
        [
            "lock_passwd",
            "name",
            "shell",
            "ssh_authorized_keys",
            "sudo"
        ]
    );
    assert_eq!(build_user["name"].as_str(), Some(user));
    assert_eq!(build_user["lock_passwd"].as_bool(), Some(true));
    let authorized = build_user["ssh_authorized_keys"]
        .as_sequence()
        .expect("a list of keys");
    assert_eq!(authorized.len(), 1, "{}", seed.user_data);
    assert_eq!(authorized[0].as_str(), Some(client.trim()));
    let ssh_keys = &data["ssh_keys"];
    assert_eq!(keys(ssh_keys), ["ed25519_private", "ed25519_public"]);
    assert_eq!(
        ssh_keys["ed25519_public"].as_str(),
        Some(host_public.trim())
    );
    // The block keeps each line of the key, with `\n` line ends and (YAML's default
    // "clip") one final line end.
    let lines: String = host_private.lines().flat_map(|l| [l, "\n"]).collect();
    let private = format!("{}\n", lines.trim_end_matches('\n'));
    assert_eq!(
        ssh_keys["ed25519_private"].as_str(),
        Some(private.as_str()),
        "{}",
        seed.user_data
    );
});
