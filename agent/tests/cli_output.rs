//! What the `mooring` binary prints for people when it cannot start: one
//! clear line, no debug structures, no repeated error chains.

use std::process::Command;

fn mooring(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mooring"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", std::env::temp_dir().join("mooring-no-home"))
        .env("RUST_BACKTRACE", "0")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn outside_a_cluster_the_kubernetes_commands_say_so_in_one_line() {
    for cmd in [&["controller"][..], &["speaker", "--node", "n1"][..]] {
        let (code, err) = mooring(cmd);
        assert_eq!(code, 1, "{cmd:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{cmd:?}: {err}");
        assert!(lines[0].contains("not in a cluster") && lines[0].contains("KUBECONFIG"), "{err}");
    }
}

#[test]
fn a_config_path_that_does_not_exist_is_an_error_at_start() {
    let (code, err) = mooring(&["standalone", "--node", "n1", "--config", "/nonexistent/mooring"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--config /nonexistent/mooring: no such file or directory"), "{err}");
}
