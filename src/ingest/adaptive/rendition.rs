//! Which rendition of a master playlist is analysed. A monitor never switches rendition on
//! its own (a player does, to follow bandwidth): the analysed picture keeps its resolution,
//! and a rendition that breaks is seen breaking instead of being switched away from.

use m3u8_rs::{AlternativeMediaType, MasterPlaylist, VariantStream};

use crate::config::Rendition;

/// What to fetch and decode: one variant (by its index among the master's non-I-frame
/// variants, the `vN` of the manifest checks) and, when the variant's audio is a rendition of
/// its own (`EXT-X-MEDIA TYPE=AUDIO` with a URI), that rendition (the `aN` of the checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub variant: usize,
    pub audio: Option<AudioChoice>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioChoice {
    /// Index among the master's audio renditions that have a URI.
    pub index: usize,
    pub uri: String,
}

/// The master's variants that carry media segments (I-frame playlists do not play).
pub fn playable(master: &MasterPlaylist) -> impl Iterator<Item = &VariantStream> {
    master.variants.iter().filter(|v| !v.is_i_frame)
}

/// The master's audio renditions that have playlists of their own, in playlist order.
pub fn audio_renditions(
    master: &MasterPlaylist,
) -> impl Iterator<Item = &m3u8_rs::AlternativeMedia> {
    master
        .alternatives
        .iter()
        .filter(|a| a.media_type == AlternativeMediaType::Audio && a.uri.is_some())
}

/// What the choice looks at in a rendition (an HLS variant, a DASH representation).
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub bandwidth: u64,
    pub height: Option<u64>,
    pub audio_only: bool,
}

impl Candidate {
    fn of_variant(v: &VariantStream) -> Self {
        Self {
            bandwidth: v.bandwidth,
            height: v.resolution.map(|r| r.height),
            audio_only: is_audio_only(v),
        }
    }
}

/// Chooses the analysed rendition of an HLS master; an error says why none fits.
pub fn choose(
    master: &MasterPlaylist,
    rendition: Rendition,
    max_height: Option<u32>,
) -> Result<Choice, String> {
    let variants: Vec<&VariantStream> = playable(master).collect();
    let candidates: Vec<Candidate> = variants.iter().map(|v| Candidate::of_variant(v)).collect();
    let variant = choose_index(&candidates, rendition, max_height)?;
    let audio = variants[variant]
        .audio
        .as_deref()
        .and_then(|group| audio_of_group(master, group));
    Ok(Choice { variant, audio })
}

/// The index of the analysed rendition among `renditions` (in manifest order).
pub fn choose_index(
    renditions: &[Candidate],
    rendition: Rendition,
    max_height: Option<u32>,
) -> Result<usize, String> {
    if renditions.is_empty() {
        return Err("the manifest lists no playable rendition".into());
    }
    Ok(match rendition {
        Rendition::Index(n) if n < renditions.len() => n,
        Rendition::Index(n) => {
            return Err(format!(
                "rendition {n} does not exist: the manifest lists {} (0 to {})",
                renditions.len(),
                renditions.len() - 1
            ));
        }
        Rendition::Lowest => pick(renditions, |a, b| b.bandwidth.cmp(&a.bandwidth)),
        Rendition::Highest => highest(renditions, max_height),
    })
}

/// Video renditions win over audio-only ones (an audio-only variant listed in a video ladder
/// is for players on poor links); an audio-only manifest is analysed as audio.
fn candidates(renditions: &[Candidate]) -> Vec<(usize, Candidate)> {
    let all = renditions.iter().copied().enumerate();
    if renditions.iter().all(|r| r.audio_only) {
        all.collect()
    } else {
        all.filter(|(_, r)| !r.audio_only).collect()
    }
}

/// The index of the best candidate by `better` (greater wins; the first listed on a tie).
fn pick(
    renditions: &[Candidate],
    better: impl Fn(&Candidate, &Candidate) -> std::cmp::Ordering,
) -> usize {
    let mut best: Option<(usize, Candidate)> = None;
    for (i, r) in candidates(renditions) {
        if best.is_none_or(|(_, b)| better(&r, &b).is_gt()) {
            best = Some((i, r));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// The highest bandwidth at most `max_height` tall; when every rendition is taller, the
/// shortest one (the nearest to what was asked for).
fn highest(renditions: &[Candidate], max_height: Option<u32>) -> usize {
    let Some(limit) = max_height else {
        return pick(renditions, |a, b| a.bandwidth.cmp(&b.bandwidth));
    };
    let fits = |r: &Candidate| r.height.is_none_or(|h| h <= u64::from(limit));
    if candidates(renditions).iter().any(|(_, r)| fits(r)) {
        pick(renditions, |a, b| {
            fits(a).cmp(&fits(b)).then(a.bandwidth.cmp(&b.bandwidth))
        })
    } else {
        pick(renditions, |a, b| {
            b.height.cmp(&a.height).then(a.bandwidth.cmp(&b.bandwidth))
        })
    }
}

fn is_audio_only(v: &VariantStream) -> bool {
    if v.resolution.is_some() || v.video.is_some() {
        return false;
    }
    let Some(codecs) = v.codecs.as_deref() else {
        return false;
    };
    codecs.split(',').map(str::trim).all(|c| {
        [
            "mp4a", "ac-3", "ec-3", "opus", "flac", "mp3", "alac", "ac-4",
        ]
        .iter()
        .any(|audio| c.starts_with(audio))
    })
}

/// The rendition of audio `group` a player picks first: DEFAULT, else AUTOSELECT, else the
/// first listed. `None` when the group's audio is muxed into the variant (no URI).
fn audio_of_group(master: &MasterPlaylist, group: &str) -> Option<AudioChoice> {
    let in_group: Vec<(usize, &m3u8_rs::AlternativeMedia)> = audio_renditions(master)
        .enumerate()
        .filter(|(_, a)| a.group_id == group)
        .collect();
    let (index, media) = in_group
        .iter()
        .find(|(_, a)| a.default)
        .or_else(|| in_group.iter().find(|(_, a)| a.autoselect))
        .or_else(|| in_group.first())?;
    Some(AudioChoice {
        index: *index,
        uri: media.uri.clone()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(text: &str) -> MasterPlaylist {
        match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
            other => panic!("not a master: {other:?}"),
        }
    }

    const LADDER_LOW_FIRST: &str = "#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.2\"
audio.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\"
360p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS=\"avc1.640028,mp4a.40.2\"
1080p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"
720p.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI=\"iframes.m3u8\"
";

    fn chosen(rendition: Rendition, max_height: Option<u32>) -> Result<usize, String> {
        choose(&master(LADDER_LOW_FIRST), rendition, max_height).map(|c| c.variant)
    }

    #[test]
    fn highest_is_the_top_bandwidth_video_variant() {
        assert_eq!(chosen(Rendition::Highest, None), Ok(2));
    }

    #[test]
    fn lowest_skips_the_audio_only_variant() {
        assert_eq!(chosen(Rendition::Lowest, None), Ok(1));
    }

    #[test]
    fn max_height_caps_the_highest() {
        assert_eq!(chosen(Rendition::Highest, Some(720)), Ok(3));
        assert_eq!(chosen(Rendition::Highest, Some(400)), Ok(1));
        // Nothing is that short: the shortest video variant.
        assert_eq!(chosen(Rendition::Highest, Some(100)), Ok(1));
    }

    #[test]
    fn index_counts_playable_variants_in_order() {
        assert_eq!(chosen(Rendition::Index(0), None), Ok(0));
        assert_eq!(chosen(Rendition::Index(3), None), Ok(3));
        let err = chosen(Rendition::Index(4), None).unwrap_err();
        assert!(err.contains("lists 4 (0 to 3)"), "{err}");
    }

    #[test]
    fn an_audio_only_master_is_analysed_as_audio() {
        let m = master(
            "#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.5\"
lo.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS=\"mp4a.40.2\"
hi.m3u8
",
        );
        assert_eq!(choose(&m, Rendition::Highest, None).unwrap().variant, 1);
    }

    #[test]
    fn separate_audio_rendition_default_first() {
        let m = master(
            "#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"fr\",LANGUAGE=\"fr\",URI=\"fr.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"en\",LANGUAGE=\"en\",DEFAULT=YES,URI=\"en.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"muxed\",NAME=\"main\",DEFAULT=YES
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO=\"aac\"
360p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,AUDIO=\"muxed\"
muxed.m3u8
",
        );
        let separate = choose(&m, Rendition::Index(0), None).unwrap();
        assert_eq!(
            separate.audio,
            Some(AudioChoice {
                index: 1,
                uri: "en.m3u8".into()
            })
        );
        assert_eq!(choose(&m, Rendition::Index(1), None).unwrap().audio, None);
    }
}
