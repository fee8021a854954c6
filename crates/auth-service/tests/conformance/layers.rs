//! The tiers of `docs/architecture.md`, held against the source: who may import whom, and
//! which libraries stay in which folder. Plain file reading; no database.

use std::path::{Path, PathBuf};

mod imports;
mod loops;

/// Every `.rs` file under `src/<folder>` (or the whole `src` for `""`), with its code lines:
/// comments and doc comments are left out, since they may name what the code must not use.
fn code_of(folder: &str) -> Vec<(PathBuf, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(folder);
    let mut files = Vec::new();
    let mut pending = vec![root];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .lines()
                .map(str::trim)
                .filter(|line| !line.starts_with("//"))
                .map(str::to_owned)
                .collect();
            files.push((path, code));
        }
    }
    assert!(!files.is_empty(), "no sources under src/{folder}");
    files
}

/// The places under `src/<folder>` whose code mentions any of `words`.
fn mentions(folder: &str, words: &[&str]) -> Vec<String> {
    code_of(folder)
        .into_iter()
        .flat_map(|(path, lines)| {
            lines
                .into_iter()
                .filter(|line| words.iter().any(|word| line.contains(word)))
                .map(move |line| format!("{}: {line}", path.display()))
        })
        .collect()
}

/// Whether `path` lies under one of `src/<folder>` of `allowed`.
fn under(path: &str, allowed: &[&str]) -> bool {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    allowed
        .iter()
        .any(|folder| Path::new(path).starts_with(src.join(folder)))
}

#[test]
fn the_inner_tiers_never_reach_out_to_the_transports() {
    for folder in [
        "domain", "services", "store", "crypto", "limits", "mail", "events",
    ] {
        let found = mentions(
            folder,
            &["crate::http", "crate::grpc", "crate::app", "crate::cli"],
        );
        assert!(found.is_empty(), "{folder} imports a transport: {found:#?}");
    }
}

#[test]
fn the_domain_is_plain_types_and_rules() {
    let found: Vec<String> = mentions("domain", &["crate::", "sqlx", "axum", "tokio", "async fn"])
        .into_iter()
        .filter(|line| !line.contains("crate::domain") && !line.contains("crate::error"))
        .collect();
    assert!(found.is_empty(), "domain reaches beyond itself: {found:#?}");
}

#[test]
fn the_transports_reach_the_state_not_the_app_that_builds_them() {
    for folder in ["http", "grpc"] {
        let found = mentions(folder, &["crate::app", "crate::store"]);
        assert!(found.is_empty(), "{folder}: {found:#?}");
    }
}

#[test]
fn the_store_never_calls_a_use_case() {
    let found = mentions("store", &["crate::services"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn database_and_transport_libraries_stay_in_their_folders() {
    for (words, allowed) in [
        (&["sqlx::", "sqlx;"][..], &["store"][..]),
        (&["axum::", "axum;"][..], &["http", "grpc"][..]),
        (&["tonic::", "tonic;", "tonic_"][..], &["grpc"][..]),
    ] {
        let found: Vec<String> = mentions("", words)
            .into_iter()
            .filter(|place| !under(place, allowed))
            .collect();
        assert!(
            found.is_empty(),
            "{words:?} outside {allowed:?}: {found:#?}"
        );
    }
}
