//! The RFC 8216 vectors of `support/hls_vectors.rs` through a real origin
//! (`support/vector_origin.py`, which plays each vector's playlists in turn, with real
//! MPEG-TS segments) and `streamwatch run`: each vector's stream must raise exactly its
//! (detector, rule, variant) events among `sequence`, `hls_conformance`, `segment_duration`
//! and `scte35`, and the clean vectors none; the cues of the playlists are counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::hls_vectors::{STEP_SECS, Vector, vectors};
use crate::support::proc::tcp_accepts;
use crate::support::{ClipSpec, Proc, Streamwatch, free_port, mpegts_clip, temp_dir, wait_until};

const MANIFEST_DETECTORS: [&str; 4] = ["sequence", "hls_conformance", "segment_duration", "scte35"];

fn start_origin(vectors: &[Vector]) -> (Proc, u16) {
    let dir = temp_dir("vector-origin");
    let mut table = BTreeMap::new();
    for v in vectors {
        let mut files = serde_json::Map::new();
        for r in &v.renditions {
            files.insert(r.file.to_owned(), json!(r.steps));
        }
        if v.is_ladder() {
            files.insert("master.m3u8".to_owned(), json!(v.master()));
        }
        table.insert(v.name, json!({"step": STEP_SECS, "files": files}));
    }
    let table_path = dir.join("vectors.json");
    std::fs::write(&table_path, serde_json::to_string(&table).unwrap()).unwrap();
    let segment = mpegts_clip(&ClipSpec {
        seconds: 2.0,
        ..Default::default()
    });
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/vector_origin.py");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script)
        .arg(port.to_string())
        .arg(&segment)
        .arg(&table_path);
    let origin =
        Proc::spawn("vector origin", &mut cmd, &dir.join("origin.log")).remove_dir_on_drop(&dir);
    assert!(
        wait_until(Duration::from_secs(10), || tcp_accepts(port)),
        "the vector origin did not start"
    );
    (origin, port)
}

/// The variant name streamwatch gives a rendition file of the vector.
fn variant_of(vector: &Vector, file: &str) -> String {
    if file.is_empty() {
        return String::new();
    }
    if !vector.is_ladder() {
        return "main".into();
    }
    let i = vector
        .renditions
        .iter()
        .position(|r| r.file == file)
        .unwrap();
    format!("v{i}")
}

fn manifest_events(stream: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for key in ["active_defects", "last_events"] {
        for e in stream[key].as_array().into_iter().flatten() {
            let detector = e["detector"].as_str().unwrap_or("");
            if MANIFEST_DETECTORS.contains(&detector) {
                let field = |k: &str| e[k].as_str().unwrap_or("").to_owned();
                out.insert((detector.to_owned(), field("rule"), field("variant")));
            }
        }
    }
    out
}

/// The cues the analysed rendition's playlist carries are counted and logged as SCTE-35
/// messages, and its break shows.
fn check_cues(stream: &Value, name: &str, wrong: &mut Vec<String>) {
    let messages = stream["scte35"]["messages"].as_u64().unwrap_or(0);
    let expected = match name {
        "cue_aligned" | "cue_misaligned" | "cue_daterange" | "cue_signal_lost" => 2,
        _ => 1,
    };
    if messages != expected {
        wrong.push(format!(
            "{name}: {messages} SCTE-35 messages, expected {expected}: {:#}",
            stream["scte35"]
        ));
    }
    let recent = stream["scte35"]["recent"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let commands: Vec<&str> = recent
        .iter()
        .filter_map(|c| c["command"].as_str())
        .collect();
    let tag = if name == "cue_in_without_out" {
        "cue_in"
    } else {
        "cue_out"
    };
    if !commands.contains(&tag) {
        wrong.push(format!("{name}: no {tag} among {commands:?}"));
    }
}

#[test]
fn rfc_vectors_through_a_real_origin_raise_exactly_their_rules() {
    let vectors = vectors();
    let (origin, port) = start_origin(&vectors);
    let mut config = String::from("[ingest]\nhttp_timeout = 2.0\n");
    for v in &vectors {
        let file = if v.is_ladder() {
            "master.m3u8"
        } else {
            "live.m3u8"
        };
        config.push_str(&format!(
            "[[streams]]\nid = \"{}\"\nurl = \"http://127.0.0.1:{port}/{}/{file}\"\n",
            v.name, v.name
        ));
        if let Some(seconds) = v.max_interval {
            config.push_str(&format!(
                "[streams.detectors.scte35]\nmax_interval = {seconds}\n"
            ));
        }
    }
    let sw = Streamwatch::start(&config, &[]);
    // Every rendition of every vector on its last (ended) step, then one more poll.
    let all_ended = wait_until(Duration::from_secs(60), || {
        sw.streams().iter().all(|s| {
            s["hls"]
                .as_array()
                .is_some_and(|h| !h.is_empty() && h.iter().all(|v| v["ended"] == true))
        })
    });
    if !all_ended {
        origin.dump_log();
        sw.dump_log();
    }
    assert!(all_ended, "not every vector reached its end");
    std::thread::sleep(Duration::from_secs(2));
    let mut wrong = Vec::new();
    for v in &vectors {
        let stream = sw.stream(v.name);
        let found = manifest_events(&stream);
        let expected: BTreeSet<_> = v
            .expect
            .iter()
            .map(|(d, r, f)| (d.to_string(), r.to_string(), variant_of(v, f)))
            .collect();
        if v.name.starts_with("cue_") {
            check_cues(&stream, v.name, &mut wrong);
        }
        if found != expected {
            wrong.push(format!(
                "{} (RFC {}): expected {expected:?}, found {found:?}",
                v.name, v.rfc
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    sw.terminate();
}
