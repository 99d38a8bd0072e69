//! RFC 8216 / 8216bis vectors for the HLS manifest rules: each is the sequence of playlists a
//! live origin serves, one step every [`STEP_SECS`], and the (detector, rule) events the
//! sequence must raise, no more and no fewer. The same table runs through the checks alone
//! (unit tests, which include this file) and through a real origin and `streamwatch run`
//! (`tests/e2e/hls_conformance.rs`).
//!
//! Every vector's last step ends the playlist (`EXT-X-ENDLIST`), so that what comes after
//! the table (a stale or stalled playlist) is no finding.

/// Seconds each step is served.
pub const STEP_SECS: f64 = 2.0;
/// Segment and target duration of the vectors.
const TARGET: u64 = 2;

/// A named playlist of a vector's ladder at each step: `live.m3u8` for a lone media
/// playlist, `v0.m3u8`, `v1.m3u8` for the renditions of `master.m3u8`.
pub struct Rendition {
    pub file: &'static str,
    pub steps: Vec<String>,
}

pub struct Vector {
    pub name: &'static str,
    /// The section of RFC 8216 (or 8216bis, `bis`) the vector follows.
    pub rfc: &'static str,
    pub renditions: Vec<Rendition>,
    /// (detector, rule, rendition file) of the events expected; a stream-wide event has no
    /// file ("").
    pub expect: Vec<(&'static str, &'static str, &'static str)>,
    /// The stream's `detectors.scte35.max_interval`, where the vector sets one.
    pub max_interval: Option<f64>,
}

impl Vector {
    pub fn is_ladder(&self) -> bool {
        self.renditions.len() > 1
    }

    pub fn master(&self) -> String {
        let mut m = String::from("#EXTM3U\n");
        for (i, r) in self.renditions.iter().enumerate() {
            m.push_str(&format!(
                "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION=320x240\n{}\n",
                800_000 - i * 100_000,
                r.file
            ));
        }
        m
    }

    pub fn steps(&self) -> usize {
        self.renditions
            .iter()
            .map(|r| r.steps.len())
            .max()
            .unwrap_or(0)
    }
}

/// A media playlist being built: a window of `s<N>.ts` segments.
#[derive(Clone)]
pub struct Pl {
    version: u32,
    target: u64,
    sequence: u64,
    discontinuity_sequence: u64,
    segments: Vec<Seg>,
    header: Vec<String>,
    trailer: Vec<String>,
    end: bool,
}

#[derive(Clone)]
struct Seg {
    number: u64,
    duration: f64,
    tags: Vec<String>,
    /// Seconds added to the segment's date (None: undated).
    date_offset: Option<f64>,
    name: Option<String>,
}

/// A live window of `count` segments, the first numbered `sequence`.
pub fn live(sequence: u64, count: u64) -> Pl {
    Pl {
        version: 3,
        target: TARGET,
        sequence,
        discontinuity_sequence: 0,
        segments: (sequence..sequence + count)
            .map(|number| Seg {
                number,
                duration: TARGET as f64,
                tags: Vec::new(),
                date_offset: None,
                name: None,
            })
            .collect(),
        header: Vec::new(),
        trailer: Vec::new(),
        end: false,
    }
}

/// Five steps of a regular live window of four segments, one more segment each step.
fn regular() -> Vec<Pl> {
    (10..15).map(|n| live(n, 4)).collect()
}

impl Pl {
    pub fn version(mut self, v: u32) -> Self {
        self.version = v;
        self
    }

    pub fn target(mut self, t: u64) -> Self {
        self.target = t;
        self
    }

    pub fn discontinuity_sequence(mut self, d: u64) -> Self {
        self.discontinuity_sequence = d;
        self
    }

    pub fn durations(mut self, d: f64) -> Self {
        for s in &mut self.segments {
            s.duration = d;
        }
        self
    }

    /// Every segment dated from its number (2 s apart), plus `offset` seconds.
    pub fn dated(mut self, offset: f64) -> Self {
        for s in &mut self.segments {
            s.date_offset = Some(offset);
        }
        self
    }

    /// Tags one segment (by number) with a line before its EXTINF.
    pub fn tag(mut self, number: u64, tag: &str) -> Self {
        if let Some(s) = self.segments.iter_mut().find(|s| s.number == number) {
            s.tags.push(tag.to_owned());
        }
        self
    }

    /// Moves one segment's date by `offset` seconds.
    pub fn redate(mut self, number: u64, offset: f64) -> Self {
        if let Some(s) = self.segments.iter_mut().find(|s| s.number == number) {
            s.date_offset = Some(offset);
        }
        self
    }

    pub fn rename(mut self, number: u64, name: &str) -> Self {
        if let Some(s) = self.segments.iter_mut().find(|s| s.number == number) {
            s.name = Some(name.to_owned());
        }
        self
    }

    pub fn drop_last(mut self) -> Self {
        self.segments.pop();
        self
    }

    pub fn header(mut self, line: &str) -> Self {
        self.header.push(line.to_owned());
        self
    }

    /// A line after the last segment (the parts of the one in progress, a preload hint).
    pub fn trailer(mut self, line: &str) -> Self {
        self.trailer.push(line.to_owned());
        self
    }

    pub fn ended(mut self) -> Self {
        self.end = true;
        self
    }

    pub fn text(&self) -> String {
        let mut t = format!(
            "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            self.version, self.target, self.sequence
        );
        if self.discontinuity_sequence > 0 {
            t.push_str(&format!(
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
                self.discontinuity_sequence
            ));
        }
        for h in &self.header {
            t.push_str(h);
            t.push('\n');
        }
        for s in &self.segments {
            for tag in &s.tags {
                t.push_str(tag);
                t.push('\n');
            }
            if let Some(offset) = s.date_offset {
                t.push_str(&format!(
                    "#EXT-X-PROGRAM-DATE-TIME:{}\n",
                    date(s.number as f64 * TARGET as f64 + offset)
                ));
            }
            let name = s.name.clone().unwrap_or(format!("s{}.ts", s.number));
            t.push_str(&format!("#EXTINF:{:.3},\n{name}\n", s.duration));
        }
        for line in &self.trailer {
            t.push_str(line);
            t.push('\n');
        }
        if self.end {
            t.push_str("#EXT-X-ENDLIST\n");
        }
        t
    }
}

/// 2026-01-01T00:00:00Z plus `seconds`, as RFC 3339 with milliseconds.
fn date(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    let (s, ms) = (ms / 1000, ms % 1000);
    format!(
        "2026-01-01T{:02}:{:02}:{:02}.{ms:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The texts of a lone playlist's steps, the last one ended.
fn steps(mut pls: Vec<Pl>) -> Vec<Rendition> {
    if let Some(last) = pls.pop() {
        pls.push(last.ended());
    }
    vec![Rendition {
        file: "live.m3u8",
        steps: pls.iter().map(Pl::text).collect(),
    }]
}

fn ladder(v0: Vec<Pl>, v1: Vec<Pl>) -> Vec<Rendition> {
    let mut r = steps(v0);
    r[0].file = "v0.m3u8";
    let mut second = steps(v1);
    second[0].file = "v1.m3u8";
    r.extend(second);
    r
}

/// LL-HLS: a window with parts of 1 s (two per segment) on its last two segments and the
/// segment in progress, and the server control a player needs.
fn low_latency(n: u64, part: f64, hold_back: Option<f64>) -> Pl {
    let mut pl = live(n, 4).version(9);
    pl = pl.header("#EXT-X-PART-INF:PART-TARGET=1.0");
    pl = pl.header(&match hold_back {
        Some(h) => format!("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={h:.1}"),
        None => "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES".to_owned(),
    });
    for number in [n + 2, n + 3] {
        for i in 0..2 {
            let line = format!(
                "#EXT-X-PART:DURATION={part:.3},URI=\"s{number}.{i}.ts\"{}",
                if i == 0 { ",INDEPENDENT=YES" } else { "" }
            );
            pl = pl.tag(number, &line);
        }
    }
    pl.trailer(&format!(
        "#EXT-X-PART:DURATION=1.000,URI=\"s{}.0.ts\",INDEPENDENT=YES",
        n + 4
    ))
    .trailer(&format!(
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s{}.1.ts\"",
        n + 4
    ))
}

pub fn vectors() -> Vec<Vector> {
    let mut v = lone_playlist_vectors();
    v.extend(low_latency_vectors());
    v.extend(ladder_vectors());
    v.extend(cue_vectors());
    v
}

/// EXT-X-DATERANGE with the splice_info_sections of a 4 s break (splice_insert, event 7,
/// immediate, out of network then back) at segments 12 and 14.
const DATERANGE_OUT: &str = "#EXT-X-DATERANGE:ID=\"7\",START-DATE=\"2026-01-01T00:00:24.000Z\",PLANNED-DURATION=4.0,SCTE35-OUT=0xFC30200000000000000000000F05000000077FFF7E00057E40000100000000D42A9E85";
const DATERANGE_IN: &str = "#EXT-X-DATERANGE:ID=\"7\",START-DATE=\"2026-01-01T00:00:24.000Z\",END-DATE=\"2026-01-01T00:00:28.000Z\",SCTE35-IN=0xFC301B0000000000000000000A05000000077F5F000100000000E679D73E";

/// Tags segment `number` in every step that lists it.
fn tag_all(pls: Vec<Pl>, number: u64, tag: &str) -> Vec<Pl> {
    pls.into_iter().map(|p| p.tag(number, tag)).collect()
}

/// SCTE-35 cues in the playlists (SCTE 35 §12.2 / RFC 8216 §4.3.2.7.1): a 4 s break from
/// segment 12 to 14, and its faults.
fn cue_vectors() -> Vec<Vector> {
    let with_break = || {
        tag_all(
            tag_all(regular(), 12, "#EXT-X-CUE-OUT:4.0"),
            14,
            "#EXT-X-CUE-IN",
        )
    };
    let late_break = tag_all(
        tag_all(regular(), 13, "#EXT-X-CUE-OUT:4.0"),
        14,
        "#EXT-X-CUE-IN",
    );
    let mut misaligned = vector(
        "cue_misaligned",
        "4.3.2.7.1",
        ladder(with_break(), late_break),
        &[("scte35", "cue_misaligned")],
    );
    misaligned.expect[0].2 = "v1.m3u8";
    vec![
        vector(
            "cue_aligned",
            "4.3.2.7.1",
            ladder(with_break(), with_break()),
            &[],
        ),
        misaligned,
        vector(
            "cue_break_overrun",
            "4.3.2.7.1",
            steps(tag_all(regular(), 12, "#EXT-X-CUE-OUT:2.0")),
            &[("scte35", "break_overrun")],
        ),
        vector(
            "cue_in_without_out",
            "4.3.2.7.1",
            steps(tag_all(regular(), 14, "#EXT-X-CUE-IN")),
            &[("scte35", "in_without_out")],
        ),
    ]
}

fn vector(
    name: &'static str,
    rfc: &'static str,
    renditions: Vec<Rendition>,
    expect: &[(&'static str, &'static str)],
) -> Vector {
    let file = renditions[0].file;
    Vector {
        name,
        rfc,
        renditions,
        expect: expect.iter().map(|(d, r)| (*d, *r, file)).collect(),
        max_interval: None,
    }
}

fn with_step(mut pls: Vec<Pl>, step: usize, f: impl FnOnce(Pl) -> Pl) -> Vec<Pl> {
    pls[step] = f(pls[step].clone());
    pls
}

fn lone_playlist_vectors() -> Vec<Vector> {
    let dated: Vec<Pl> = regular().into_iter().map(|p| p.dated(0.0)).collect();
    vec![
        vector("clean", "6.2.1", steps(regular()), &[]),
        vector("clean_dated", "4.3.2.6", steps(dated.clone()), &[]),
        vector(
            "shrink",
            "6.2.1",
            steps(with_step(regular(), 2, |_| live(11, 4).drop_last())),
            &[("sequence", "playlist_shrink")],
        ),
        vector(
            "sequence_back",
            "6.2.1",
            // The origin restarts with old numbers, and goes on from them.
            steps([10, 11, 5, 6, 7].into_iter().map(|n| live(n, 4)).collect()),
            &[("sequence", "media_sequence")],
        ),
        vector(
            "sequence_jump",
            "6.2.2",
            steps(
                (0..5)
                    .map(|i| live(if i < 2 { 10 + i } else { 40 + i }, 4))
                    .collect(),
            ),
            &[("sequence", "sequence_jump")],
        ),
        vector(
            "segment_changed",
            "6.2.1",
            steps(with_step(regular(), 2, |p| p.rename(13, "other.ts"))),
            &[("sequence", "segment_changed")],
        ),
        vector(
            "discontinuity_sequence",
            "6.2.2",
            steps(with_step(regular(), 2, |p| p.discontinuity_sequence(3))),
            &[("sequence", "discontinuity_sequence")],
        ),
        vector(
            "target_duration_change",
            "6.2.1",
            steps(with_step(regular(), 2, |p| p.target(3))),
            &[("hls_conformance", "target_duration")],
        ),
        vector(
            "version_too_low",
            "7",
            steps(
                regular()
                    .into_iter()
                    .map(|p| p.version(2).durations(1.96))
                    .collect(),
            ),
            &[("hls_conformance", "version")],
        ),
        vector(
            "version_change",
            "6.2.1",
            steps(with_step(regular(), 2, |p| p.version(4))),
            &[("hls_conformance", "version")],
        ),
        vector(
            "gap",
            "bis 4.4.4.7",
            steps(with_step(regular(), 2, |p| p.tag(15, "#EXT-X-GAP"))),
            &[("hls_conformance", "gap")],
        ),
        vector(
            "date_jump",
            "4.3.2.6",
            steps(with_step(dated.clone(), 2, |p| p.redate(15, 10.0))),
            &[("hls_conformance", "program_date_time")],
        ),
        vector(
            "redated",
            "6.2.1",
            steps(with_step(dated, 2, |p| p.dated(5.0))),
            &[("hls_conformance", "program_date_time")],
        ),
        vector(
            "daterange_undated",
            "4.3.2.7",
            steps(with_step(regular(), 2, |p| {
                p.tag(
                    15,
                    "#EXT-X-DATERANGE:ID=\"ad1\",START-DATE=\"2026-01-01T00:00:30.000Z\",DURATION=30.0",
                )
            })),
            &[("hls_conformance", "program_date_time")],
        ),
        vector(
            "changed_after_endlist",
            "6.2.1",
            steps(with_step(regular(), 1, Pl::ended)),
            &[("hls_conformance", "endlist")],
        ),
    ]
}

fn low_latency_vectors() -> Vec<Vector> {
    let ll = |part: f64, hold_back: Option<f64>| -> Vec<Pl> {
        (10..15).map(|n| low_latency(n, part, hold_back)).collect()
    };
    vec![
        vector("ll_clean", "bis 4.4.4.9", steps(ll(1.0, Some(3.0))), &[]),
        vector(
            "ll_part_over_target",
            "bis 4.4.4.9",
            steps(with_step(ll(1.0, Some(3.0)), 2, |_| {
                low_latency(12, 1.0, Some(3.0))
                    .trailer("#EXT-X-PART:DURATION=1.500,URI=\"s16.1.ts\"")
            })),
            &[("hls_conformance", "low_latency")],
        ),
        vector(
            "ll_parts_do_not_add_up",
            "bis 4.4.4.9",
            steps(ll(0.9, Some(3.0))),
            &[("hls_conformance", "low_latency")],
        ),
        vector(
            "ll_no_part_hold_back",
            "bis 4.4.3.8",
            steps(ll(1.0, None)),
            &[("hls_conformance", "low_latency")],
        ),
    ]
}

fn ladder_vectors() -> Vec<Vector> {
    let with_file = |mut v: Vector, file: &'static str| {
        for e in &mut v.expect {
            e.2 = file;
        }
        v
    };
    let stuck: Vec<Pl> = (10..15).map(|n| live(n.min(11), 4)).collect();
    // The first rendition runs three segments a step ahead from the third step on.
    let racing: Vec<Pl> = [10, 11, 14, 17, 20]
        .into_iter()
        .map(|n| live(n, 4))
        .collect();
    let dated =
        |offset: f64| -> Vec<Pl> { regular().into_iter().map(|p| p.dated(offset)).collect() };
    vec![
        vector("ladder_clean", "6.2.4", ladder(regular(), regular()), &[]),
        with_file(
            vector(
                "ladder_variant_stale",
                "6.2.4",
                ladder(regular(), stuck),
                &[("hls_conformance", "variant_stale")],
            ),
            "v1.m3u8",
        ),
        with_file(
            vector(
                "ladder_sequence_drift",
                "6.2.4",
                ladder(racing, regular()),
                &[("hls_conformance", "variant_drift")],
            ),
            "v1.m3u8",
        ),
        with_file(
            vector(
                "ladder_date_drift",
                "6.2.4",
                ladder(dated(0.0), dated(3.0)),
                &[("hls_conformance", "variant_drift")],
            ),
            "v1.m3u8",
        ),
    ]
}
