//! What a stream carries: which media, in which format. Ingest reads it from GStreamer caps
//! (the coded caps before each decoder, the raw caps at the appsinks); the monitor merges the
//! pieces and reports changes as events; `/api/streams` and `streamwatch_stream_info` show it.
//! A leaf module: plain data and the mapping of caps fields to short, bounded names.

use serde::Serialize;

/// The media a pipeline run carries, as its decoders and appsinks showed them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Carried {
    pub video: bool,
    pub audio: bool,
}

/// The decoder elements (GStreamer factory names, e.g. `avdec_h264`, `a52dec`) the latest
/// pipeline run created for each medium; None where the medium is absent or not yet known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Decoders {
    pub video: Option<String>,
    pub audio: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VideoFormat {
    /// Short codec name (see [`video_codec`]).
    pub codec: Option<&'static str>,
    pub profile: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Frames per second (for interlaced video, frames of two fields).
    pub frame_rate: Option<f64>,
    /// `progressive` or `interlaced`.
    pub scan: Option<&'static str>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AudioFormat {
    /// Short codec name (see [`audio_codec`]).
    pub codec: Option<&'static str>,
    pub profile: Option<String>,
    pub channels: Option<u32>,
    /// Channel positions, e.g. `FL FR C LFE SL SR`.
    pub channel_layout: Option<String>,
    pub sample_rate: Option<u32>,
}

/// A stream's format; absent media are None.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MediaFormat {
    pub video: Option<VideoFormat>,
    pub audio: Option<AudioFormat>,
}

/// Overlays the fields `update` knows on `base`.
fn overlay<T: Clone>(base: &mut Option<T>, update: &Option<T>) {
    if update.is_some() {
        base.clone_from(update);
    }
}

impl MediaFormat {
    /// Merges what one caps event told (its known fields) into the format. Returns the
    /// description of each known value that changed to another (`h264 -> hevc`): a format change
    /// worth an info event, unlike a value learnt for the first time.
    pub fn merge(&mut self, update: &MediaFormat) -> Vec<String> {
        let before = self.clone();
        if let Some(v) = &update.video {
            let own = self.video.get_or_insert_with(VideoFormat::default);
            overlay(&mut own.codec, &v.codec);
            overlay(&mut own.profile, &v.profile);
            overlay(&mut own.width, &v.width);
            overlay(&mut own.height, &v.height);
            overlay(&mut own.frame_rate, &v.frame_rate);
            overlay(&mut own.scan, &v.scan);
        }
        if let Some(a) = &update.audio {
            let own = self.audio.get_or_insert_with(AudioFormat::default);
            overlay(&mut own.codec, &a.codec);
            overlay(&mut own.profile, &a.profile);
            overlay(&mut own.channels, &a.channels);
            overlay(&mut own.channel_layout, &a.channel_layout);
            overlay(&mut own.sample_rate, &a.sample_rate);
        }
        changes(&before, self)
    }

    /// The `video_codec`, `audio_codec` and `audio_channels` labels of the info series: empty
    /// while unknown or absent.
    pub fn labels(&self) -> [String; 3] {
        let video = self.video.as_ref().and_then(|v| v.codec).unwrap_or("");
        let audio = self.audio.as_ref().and_then(|a| a.codec).unwrap_or("");
        let channels = self
            .audio
            .as_ref()
            .and_then(|a| a.channels)
            .map(|c| c.to_string())
            .unwrap_or_default();
        [video.to_owned(), audio.to_owned(), channels]
    }
}

/// Known values that differ between two formats. The picture size is left out: frames report
/// a size change themselves (the monitor's `format_change` on the first frame in the new size).
fn changes(old: &MediaFormat, new: &MediaFormat) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |what: &str, a: Option<String>, b: Option<String>| {
        if let (Some(a), Some(b)) = (a, b)
            && a != b
        {
            out.push(format!("{what} {a} -> {b}"));
        }
    };
    let (ov, nv) = (
        old.video.clone().unwrap_or_default(),
        new.video.clone().unwrap_or_default(),
    );
    note(
        "video codec",
        ov.codec.map(str::to_owned),
        nv.codec.map(str::to_owned),
    );
    note("video profile", ov.profile, nv.profile);
    note(
        "frame rate",
        ov.frame_rate.map(fmt_rate),
        nv.frame_rate.map(fmt_rate),
    );
    note(
        "scan",
        ov.scan.map(str::to_owned),
        nv.scan.map(str::to_owned),
    );
    let (oa, na) = (
        old.audio.clone().unwrap_or_default(),
        new.audio.clone().unwrap_or_default(),
    );
    note(
        "audio codec",
        oa.codec.map(str::to_owned),
        na.codec.map(str::to_owned),
    );
    note(
        "audio channels",
        oa.channels.map(|c| c.to_string()),
        na.channels.map(|c| c.to_string()),
    );
    note("channel layout", oa.channel_layout, na.channel_layout);
    note(
        "sample rate",
        oa.sample_rate.map(|r| r.to_string()),
        na.sample_rate.map(|r| r.to_string()),
    );
    out
}

fn fmt_rate(r: f64) -> String {
    format!("{}", (r * 1000.0).round() / 1000.0)
}

/// Short name of a coded video format from its caps: the structure name and, for `video/mpeg`,
/// `mpegversion`. The set is small and fixed (a metric label); anything else is `other`.
pub fn video_codec(caps_name: &str, mpegversion: Option<i32>) -> &'static str {
    match (caps_name, mpegversion) {
        ("video/x-h264", _) => "h264",
        ("video/x-h265", _) => "hevc",
        ("video/mpeg", Some(1)) => "mpeg1",
        ("video/mpeg", Some(2)) => "mpeg2",
        ("video/mpeg", Some(4)) => "mpeg4",
        ("video/x-av1", _) => "av1",
        ("video/x-vp8", _) => "vp8",
        ("video/x-vp9", _) => "vp9",
        ("video/x-raw", _) => "raw",
        _ => "other",
    }
}

/// Short name of a coded audio format from its caps: the structure name and, for `audio/mpeg`,
/// `mpegversion` and `layer`.
pub fn audio_codec(caps_name: &str, mpegversion: Option<i32>, layer: Option<i32>) -> &'static str {
    match (caps_name, mpegversion, layer) {
        ("audio/mpeg", Some(2 | 4), _) => "aac",
        ("audio/mpeg", Some(1), Some(2)) => "mp2",
        ("audio/mpeg", Some(1), Some(3)) => "mp3",
        ("audio/x-ac3", ..) => "ac3",
        ("audio/x-eac3", ..) => "eac3",
        ("audio/x-opus", ..) => "opus",
        ("audio/x-flac", ..) => "flac",
        ("audio/x-raw" | "audio/x-lpcm" | "audio/x-private-ts-lpcm", ..) => "pcm",
        _ => "other",
    }
}

/// GStreamer's channel positions, by bit of `channel-mask` (GstAudioChannelPosition order).
const POSITIONS: [&str; 28] = [
    "FL", "FR", "C", "LFE", "RL", "RR", "FLC", "FRC", "RC", "LFE2", "SL", "SR", "TFL", "TFR",
    "TFC", "TC", "TRL", "TRR", "TSL", "TSR", "TRC", "BFC", "BFL", "BFR", "WL", "WR", "SSL", "SSR",
];

/// Channel positions from a `channel-mask`; without one GStreamer means mono or stereo for one
/// or two channels, and an unpositioned layout otherwise (None).
pub fn channel_layout(mask: Option<u64>, channels: u32) -> Option<String> {
    let positions = channel_positions(mask, channels)?;
    Some(if positions == [MONO] {
        "mono".to_owned()
    } else {
        positions.join(" ")
    })
}

/// The position name of a single channel without a mask.
pub const MONO: &str = "MONO";

/// The position of each channel, in buffer order (interleaved channels follow the order of the
/// mask's bits); None for an unpositioned layout of more than two channels.
pub fn channel_positions(mask: Option<u64>, channels: u32) -> Option<Vec<&'static str>> {
    match mask.filter(|&m| m != 0) {
        Some(mask) => Some(
            POSITIONS
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask & (1 << bit) != 0)
                .map(|(_, name)| *name)
                .collect(),
        ),
        None => match channels {
            1 => Some(vec![MONO]),
            2 => Some(vec!["FL", "FR"]),
            _ => None,
        },
    }
}

/// Whether `name` is a channel position GStreamer knows (`FL`, `LFE`...; case-insensitive).
pub fn is_channel_position(name: &str) -> bool {
    name.eq_ignore_ascii_case(MONO) || POSITIONS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// `progressive` or `interlaced` from caps' `interlace-mode` (absent: progressive).
pub fn scan_of(interlace_mode: Option<&str>) -> &'static str {
    match interlace_mode {
        None | Some("progressive") => "progressive",
        Some(_) => "interlaced",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_names_map_to_short_codec_names() {
        assert_eq!(video_codec("video/x-h264", None), "h264");
        assert_eq!(video_codec("video/x-h265", None), "hevc");
        assert_eq!(video_codec("video/mpeg", Some(2)), "mpeg2");
        assert_eq!(video_codec("video/x-theora", None), "other");
        assert_eq!(audio_codec("audio/mpeg", Some(4), None), "aac");
        assert_eq!(audio_codec("audio/mpeg", Some(1), Some(2)), "mp2");
        assert_eq!(audio_codec("audio/mpeg", Some(1), Some(3)), "mp3");
        assert_eq!(audio_codec("audio/x-ac3", None, None), "ac3");
        assert_eq!(audio_codec("audio/x-eac3", None, None), "eac3");
        assert_eq!(audio_codec("audio/x-opus", None, None), "opus");
        assert_eq!(audio_codec("audio/x-raw", None, None), "pcm");
        assert_eq!(audio_codec("audio/x-wma", None, None), "other");
    }

    #[test]
    fn a_channel_mask_names_positions() {
        // FL FR C LFE SL SR: bits 0-3, 10, 11.
        let five_one = 0b1100_0000_1111;
        assert_eq!(
            channel_layout(Some(five_one), 6).as_deref(),
            Some("FL FR C LFE SL SR")
        );
        assert_eq!(channel_layout(None, 2).as_deref(), Some("FL FR"));
        assert_eq!(channel_layout(Some(0), 1).as_deref(), Some("mono"));
        assert_eq!(channel_layout(None, 6), None);
        assert_eq!(scan_of(Some("interleaved")), "interlaced");
        assert_eq!(scan_of(Some("mixed")), "interlaced");
        assert_eq!(scan_of(None), "progressive");
    }

    #[test]
    fn merging_learns_values_and_reports_only_changes() {
        let mut format = MediaFormat::default();
        let coded = MediaFormat {
            video: Some(VideoFormat {
                codec: Some("h264"),
                profile: Some("high".into()),
                ..Default::default()
            }),
            audio: None,
        };
        assert!(
            format.merge(&coded).is_empty(),
            "first values are no change"
        );
        let raw = MediaFormat {
            video: Some(VideoFormat {
                width: Some(1280),
                height: Some(720),
                frame_rate: Some(25.0),
                scan: Some("progressive"),
                ..Default::default()
            }),
            audio: Some(AudioFormat {
                channels: Some(2),
                ..Default::default()
            }),
        };
        assert!(format.merge(&raw).is_empty());
        let video = format.video.clone().unwrap_or_default();
        assert_eq!(
            (video.codec, video.width),
            (Some("h264"), Some(1280)),
            "merged"
        );
        assert_eq!(
            format.labels(),
            ["h264".to_owned(), String::new(), "2".to_owned()]
        );
        let hevc = MediaFormat {
            video: Some(VideoFormat {
                codec: Some("hevc"),
                ..Default::default()
            }),
            audio: Some(AudioFormat {
                channels: Some(6),
                ..Default::default()
            }),
        };
        assert_eq!(
            format.merge(&hevc),
            ["video codec h264 -> hevc", "audio channels 2 -> 6"]
        );
        assert!(
            format.merge(&hevc).is_empty(),
            "the same again is no change"
        );
    }
}
