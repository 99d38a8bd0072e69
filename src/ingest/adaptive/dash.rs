//! MPEG-DASH: the segments of a representation, from an MPD parsed by `dash-mpd-core`.
//! Pure functions of the MPD, its URL and the wall clock (for live MPDs whose segments are
//! numbered by time), so every addressing form is unit-tested without a server.

use chrono::{DateTime, Utc};
use dash_mpd_core::{AdaptationSet, MPD, Period, Representation, SegmentTemplate};

use super::http::Range;
use super::rendition::Candidate;
use super::segments::{Encryption, Resource, SegmentRef};

/// Bound on the segments expanded from one representation (a hostile `r="1000000000"`).
const MAX_SEGMENTS: usize = 20_000;
/// Segments of a live, duration-addressed representation listed back from the newest, when
/// the MPD gives no time-shift buffer.
const LIVE_WINDOW_SEGMENTS: u64 = 10;

/// A representation of the period in play, named like HLS renditions (`v0`... for video,
/// `a0`... for audio, in MPD order).
#[derive(Clone, Debug)]
pub struct Rep {
    pub name: String,
    pub audio: bool,
    pub adaptation: usize,
    pub index: usize,
    pub bandwidth: u64,
    pub width: Option<u64>,
    pub height: Option<u64>,
}

impl Rep {
    pub fn candidate(&self) -> Candidate {
        Candidate {
            bandwidth: self.bandwidth,
            height: self.height,
            audio_only: self.audio,
        }
    }

    pub fn resolution(&self) -> Option<String> {
        Some(format!("{}x{}", self.width?, self.height?))
    }
}

pub fn is_dynamic(mpd: &MPD) -> bool {
    mpd.mpdtype.as_deref() == Some("dynamic")
}

/// Seconds from the availability start to `now`, for live MPDs.
pub fn live_seconds(mpd: &MPD, now: DateTime<Utc>) -> Option<f64> {
    let start = mpd.availabilityStartTime?;
    Some((now - start).num_milliseconds() as f64 / 1000.0)
}

/// The period in play: the last one started (live), or the first (on demand; later periods of
/// an on-demand MPD are not played).
pub fn current_period(mpd: &MPD, now: DateTime<Utc>) -> Option<usize> {
    if mpd.periods.is_empty() {
        return None;
    }
    if !is_dynamic(mpd) {
        return Some(0);
    }
    let elapsed = live_seconds(mpd, now).unwrap_or(f64::INFINITY);
    let started = mpd
        .periods
        .iter()
        .rposition(|p| p.start.is_none_or(|s| s.as_secs_f64() <= elapsed));
    Some(started.unwrap_or(0))
}

/// The video and audio representations of `period`.
pub fn representations(period: &Period) -> Vec<Rep> {
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    for (a, set) in period.adaptations.iter().enumerate() {
        let is_audio = dash_mpd_core::is_audio_adaptation(&set);
        if !is_audio && !dash_mpd_core::is_video_adaptation(&set) {
            continue;
        }
        for (i, r) in set.representations.iter().enumerate() {
            let list = if is_audio { &mut audio } else { &mut video };
            let name = format!("{}{}", if is_audio { "a" } else { "v" }, list.len());
            list.push(Rep {
                name,
                audio: is_audio,
                adaptation: a,
                index: i,
                bandwidth: r.bandwidth.unwrap_or(0),
                width: r.width.or(set.width),
                height: r.height.or(set.height),
            });
        }
    }
    video.extend(audio);
    video
}

/// The segments of `rep` in `period`; an error says why they cannot be addressed.
pub fn segments(
    mpd: &MPD,
    mpd_url: &reqwest::Url,
    period: &Period,
    rep: &Rep,
    now: DateTime<Utc>,
) -> Result<Vec<SegmentRef>, String> {
    let set = &period.adaptations[rep.adaptation];
    let representation = &set.representations[rep.index];
    let base = base_url(mpd, mpd_url, period, set, representation)?;
    let id = representation.id.as_deref().unwrap_or("");
    let vars = Vars {
        id,
        bandwidth: rep.bandwidth,
    };
    if let Some(template) = merged_template(period, set, representation) {
        return template_segments(mpd, period, &template, &base, &vars, now);
    }
    if let Some(list) = representation
        .SegmentList
        .as_ref()
        .or(set.SegmentList.as_ref())
        .or(period.SegmentList.as_ref())
    {
        return list_segments(list, &base);
    }
    if is_dynamic(mpd) {
        return Err(format!(
            "representation `{id}`: a live MPD without SegmentTemplate or SegmentList"
        ));
    }
    // SegmentBase or a bare BaseURL: the whole file is one segment.
    Ok(vec![SegmentRef {
        sequence: 0,
        media: Resource {
            url: base,
            range: None,
        },
        duration_ms: period_seconds(mpd, period).map_or(0, |s| (s * 1000.0) as u64),
        discontinuity: false,
        init: None,
        encryption: Encryption::None,
    }])
}

/// BaseURLs nest: MPD, Period, AdaptationSet, Representation, each relative to the one
/// above, the first relative to the MPD's own URL.
fn base_url(
    mpd: &MPD,
    mpd_url: &reqwest::Url,
    period: &Period,
    set: &AdaptationSet,
    representation: &Representation,
) -> Result<reqwest::Url, String> {
    let levels = [
        mpd.base_url.first(),
        period.BaseURL.first(),
        set.BaseURL.first(),
        representation.BaseURL.first(),
    ];
    let mut url = mpd_url.clone();
    for base in levels.into_iter().flatten() {
        url = url
            .join(base.base.trim())
            .map_err(|e| format!("BaseURL `{}`: {e}", base.base))?;
    }
    Ok(url)
}

/// The representation's SegmentTemplate, its missing attributes taken from the adaptation
/// set's and then the period's.
fn merged_template(
    period: &Period,
    set: &AdaptationSet,
    representation: &Representation,
) -> Option<SegmentTemplate> {
    let levels: Vec<&SegmentTemplate> = [
        representation.SegmentTemplate.as_ref(),
        set.SegmentTemplate.as_ref(),
        period.SegmentTemplate.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut merged = (*levels.first()?).clone();
    for parent in &levels[1..] {
        merged.media = merged.media.or_else(|| parent.media.clone());
        merged.initialization = merged
            .initialization
            .or_else(|| parent.initialization.clone());
        merged.timescale = merged.timescale.or(parent.timescale);
        merged.startNumber = merged.startNumber.or(parent.startNumber);
        merged.duration = merged.duration.or(parent.duration);
        merged.presentationTimeOffset = merged
            .presentationTimeOffset
            .or(parent.presentationTimeOffset);
        merged.SegmentTimeline = merged
            .SegmentTimeline
            .or_else(|| parent.SegmentTimeline.clone());
    }
    Some(merged)
}

struct Vars<'a> {
    id: &'a str,
    bandwidth: u64,
}

/// Expands `$RepresentationID$`, `$Bandwidth$`, `$Number$`, `$Time$` (with optional
/// `%0Nd` widths) and `$$` (ISO/IEC 23009-1 §5.3.9.4.4).
fn expand(template: &str, vars: &Vars, number: u64, time: u64) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('$') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let token = &after[..end];
        let (name, width) = match token.split_once('%') {
            Some((name, format)) => (name, parse_width(format)),
            None => (token, None),
        };
        let value = match name {
            "" => "$".to_owned(),
            "RepresentationID" => vars.id.to_owned(),
            "Bandwidth" => vars.bandwidth.to_string(),
            "Number" => number.to_string(),
            "Time" => time.to_string(),
            _ => format!("${token}$"),
        };
        match width {
            Some(w) if value.len() < w => {
                out.extend(std::iter::repeat_n('0', w - value.len()));
                out.push_str(&value);
            }
            _ => out.push_str(&value),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The width of a `%0Nd` format tag.
fn parse_width(format: &str) -> Option<usize> {
    format
        .strip_prefix('0')
        .and_then(|f| f.strip_suffix('d'))
        .and_then(|n| n.parse().ok())
        .filter(|&w| w <= 32)
}

fn period_seconds(mpd: &MPD, period: &Period) -> Option<f64> {
    period.duration.map(|d| d.as_secs_f64()).or_else(|| {
        let total = mpd.mediaPresentationDuration?.as_secs_f64();
        Some(total - period.start.map_or(0.0, |s| s.as_secs_f64()))
    })
}

fn template_segments(
    mpd: &MPD,
    period: &Period,
    template: &SegmentTemplate,
    base: &reqwest::Url,
    vars: &Vars,
    now: DateTime<Utc>,
) -> Result<Vec<SegmentRef>, String> {
    let media = template
        .media
        .as_deref()
        .ok_or("SegmentTemplate without a media template")?;
    let timescale = template.timescale.unwrap_or(1).max(1);
    let start_number = template.startNumber.unwrap_or(1);
    let init = match &template.initialization {
        Some(t) => Some(Resource {
            url: join(base, &expand(t, vars, start_number, 0))?,
            range: None,
        }),
        None => None,
    };
    let timed = match &template.SegmentTimeline {
        Some(timeline) => timeline_segments(timeline, start_number).0,
        None => numbered_segments(mpd, period, template, timescale, start_number, now)?,
    };
    timed
        .into_iter()
        .map(|(number, time, duration)| {
            Ok(SegmentRef {
                sequence: number,
                media: Resource {
                    url: join(base, &expand(media, vars, number, time))?,
                    range: None,
                },
                duration_ms: duration.saturating_mul(1000) / timescale,
                discontinuity: false,
                init: init.clone(),
                encryption: Encryption::None,
            })
        })
        .collect()
}

fn join(base: &reqwest::Url, relative: &str) -> Result<reqwest::Url, String> {
    base.join(relative)
        .map_err(|e| format!("segment URL `{relative}`: {e}"))
}

/// A segment timed by its timeline: number, start and duration in timescale units.
type Timed = (u64, u64, u64);

/// `(number, time, duration)` of each segment a SegmentTimeline lists, and the first place
/// where an explicit start does not follow the previous segment's end: `(expected, found)`.
/// A negative repeat count runs to the next element's start; at the end of the timeline it
/// is not expanded (live packagers list every published segment).
fn timeline_segments(
    timeline: &dash_mpd_core::SegmentTimeline,
    start_number: u64,
) -> (Vec<Timed>, Option<(u64, u64)>) {
    let mut out = Vec::new();
    let mut discontinuity = None;
    let (mut time, mut number) = (0u64, start_number);
    for (i, s) in timeline.segments.iter().enumerate() {
        if let Some(t) = s.t {
            if !out.is_empty() && t != time && discontinuity.is_none() {
                discontinuity = Some((time, t));
            }
            time = t;
        }
        if s.d == 0 {
            continue;
        }
        let repeats = match s.r {
            Some(r) if r >= 0 => r as u64,
            Some(_) => timeline
                .segments
                .get(i + 1)
                .and_then(|next| next.t)
                .map_or(0, |next| next.saturating_sub(time) / s.d)
                .saturating_sub(1),
            None => 0,
        };
        for _ in 0..=repeats {
            if out.len() >= MAX_SEGMENTS {
                return (out, discontinuity);
            }
            out.push((number, time, s.d));
            time = time.saturating_add(s.d);
            number = number.saturating_add(1);
        }
    }
    (out, discontinuity)
}

/// The timeline of a representation addressed by one, with its timescale, presentation time
/// offset and the period's start in seconds.
fn timeline_of(
    period: &Period,
    rep: &Rep,
) -> Option<(dash_mpd_core::SegmentTimeline, u64, u64, f64)> {
    let set = period.adaptations.get(rep.adaptation)?;
    let representation = set.representations.get(rep.index)?;
    let template = merged_template(period, set, representation)?;
    let timescale = template.timescale.unwrap_or(1).max(1);
    let offset = template.presentationTimeOffset.unwrap_or(0);
    let start = period.start.map_or(0.0, |s| s.as_secs_f64());
    Some((template.SegmentTimeline?, timescale, offset, start))
}

/// A gap or an overlap in the representation's SegmentTimeline, described.
pub fn timeline_problem(period: &Period, rep: &Rep) -> Option<String> {
    let (timeline, timescale, _, _) = timeline_of(period, rep)?;
    let (expected, found) = timeline_segments(&timeline, 0).1?;
    let seconds = |ticks: u64| ticks as f64 / timescale as f64;
    Some(if found > expected {
        format!(
            "SegmentTimeline gap of {:.3} s: a segment starts at {:.3} s, the previous ended at {:.3} s",
            seconds(found - expected),
            seconds(found),
            seconds(expected)
        )
    } else {
        format!(
            "SegmentTimeline overlap of {:.3} s: a segment starts at {:.3} s, the previous ended at {:.3} s",
            seconds(expected - found),
            seconds(found),
            seconds(expected)
        )
    })
}

/// Seconds by which the newest segment of a live, timeline-addressed representation ends
/// behind the availability clock (`availabilityStartTime` and the period start): negative
/// when segments are announced before they can exist.
pub fn clock_lag(mpd: &MPD, period: &Period, rep: &Rep, now: DateTime<Utc>) -> Option<f64> {
    if !is_dynamic(mpd) {
        return None;
    }
    let (timeline, timescale, offset, start) = timeline_of(period, rep)?;
    let &(_, time, duration) = timeline_segments(&timeline, 0).0.last()?;
    let end = time.saturating_add(duration).saturating_sub(offset) as f64 / timescale as f64;
    Some(live_seconds(mpd, now)? - start - end)
}

/// `(number, time, duration)` of the segments of a duration-addressed template: all of them
/// on demand; live, the ones complete by `now` within the time-shift buffer.
fn numbered_segments(
    mpd: &MPD,
    period: &Period,
    template: &SegmentTemplate,
    timescale: u64,
    start_number: u64,
    now: DateTime<Utc>,
) -> Result<Vec<(u64, u64, u64)>, String> {
    let duration = template
        .duration
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or("SegmentTemplate with neither SegmentTimeline nor a duration")?;
    let seconds = duration / timescale as f64;
    let (first, count) = if is_dynamic(mpd) {
        let period_start = period.start.map_or(0.0, |s| s.as_secs_f64());
        let offset = template.availabilityTimeOffset.unwrap_or(0.0);
        let elapsed = live_seconds(mpd, now).ok_or("a live MPD without availabilityStartTime")?
            - period_start
            + offset;
        // Only segments complete by now are available.
        let complete = (elapsed / seconds).floor().max(0.0) as u64;
        let window = mpd
            .timeShiftBufferDepth
            .map_or(LIVE_WINDOW_SEGMENTS, |d| (d.as_secs_f64() / seconds) as u64)
            .clamp(1, MAX_SEGMENTS as u64);
        let count = complete.min(window);
        (complete - count, count)
    } else {
        let total = period_seconds(mpd, period).ok_or("an MPD without any duration")?;
        (
            0,
            ((total / seconds).ceil().max(0.0) as u64).min(MAX_SEGMENTS as u64),
        )
    };
    let d = duration.round() as u64;
    Ok((first..first + count)
        .map(|i| (start_number.saturating_add(i), i.saturating_mul(d), d))
        .collect())
}

fn list_segments(
    list: &dash_mpd_core::SegmentList,
    base: &reqwest::Url,
) -> Result<Vec<SegmentRef>, String> {
    let timescale = list.timescale.unwrap_or(1).max(1);
    let duration_ms = list.duration.unwrap_or(0).saturating_mul(1000) / timescale;
    let init = match &list.Initialization {
        Some(i) => Some(Resource {
            url: match &i.sourceURL {
                Some(u) => join(base, u)?,
                None => base.clone(),
            },
            range: i.range.as_deref().and_then(parse_range),
        }),
        None => None,
    };
    list.segment_urls
        .iter()
        .take(MAX_SEGMENTS)
        .enumerate()
        .map(|(i, s)| {
            Ok(SegmentRef {
                sequence: 1 + i as u64,
                media: Resource {
                    url: match &s.media {
                        Some(u) => join(base, u)?,
                        None => base.clone(),
                    },
                    range: s.mediaRange.as_deref().and_then(parse_range),
                },
                duration_ms,
                discontinuity: false,
                init: init.clone(),
                encryption: Encryption::None,
            })
        })
        .collect()
}

/// `first-last` (inclusive, as in HTTP).
fn parse_range(text: &str) -> Option<Range> {
    let (first, last) = text.trim().split_once('-')?;
    let (first, last): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
    (last >= first).then(|| Range {
        offset: first,
        length: last - first + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mpd(xml: &str) -> MPD {
        dash_mpd_core::parse(xml).expect("valid MPD")
    }

    fn url() -> reqwest::Url {
        reqwest::Url::parse("http://origin/live/manifest.mpd").unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn urls(segments: &[SegmentRef]) -> Vec<String> {
        segments.iter().map(|s| s.media.url.to_string()).collect()
    }

    /// What ffmpeg's dash muxer writes live (`-streaming 1 -use_timeline 1`), trimmed.
    const LIVE_TIMELINE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT2S"
     availabilityStartTime="2026-11-30T08:00:00Z" publishTime="2026-11-30T08:00:30Z"
     timeShiftBufferDepth="PT10S" maxSegmentDuration="PT2S" minBufferTime="PT2S"
     profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" segmentAlignment="true">
      <Representation id="0" mimeType="video/mp4" codecs="avc1.64001e" bandwidth="300000" width="320" height="180">
        <SegmentTemplate timescale="12800" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="12">
          <SegmentTimeline>
            <S t="281600" d="25600" r="2" />
            <S d="12800" />
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
      <Representation id="1" mimeType="video/mp4" codecs="avc1.64001f" bandwidth="900000" width="640" height="360">
        <SegmentTemplate timescale="12800" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Number%05d$.m4s" startNumber="12">
          <SegmentTimeline><S t="281600" d="25600" r="3" /></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" segmentAlignment="true">
      <Representation id="2" mimeType="audio/mp4" codecs="mp4a.40.2" bandwidth="64000" audioSamplingRate="48000">
        <SegmentTemplate timescale="48000" initialization="init-stream$RepresentationID$.m4s" media="chunk-stream$RepresentationID$-$Time$.m4s" startNumber="12">
          <SegmentTimeline><S t="1056000" d="96000" r="-1" /><S t="1440000" d="96000" /></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"#;

    #[test]
    fn live_timeline_numbers_and_times() {
        let m = mpd(LIVE_TIMELINE);
        let period = &m.periods[0];
        let reps = representations(period);
        let names: Vec<&str> = reps.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["v0", "v1", "a0"]);
        let now = at("2026-11-30T08:00:40Z");
        let low = segments(&m, &url(), period, &reps[0], now).unwrap();
        assert_eq!(
            urls(&low),
            [
                "http://origin/live/chunk-stream0-00012.m4s",
                "http://origin/live/chunk-stream0-00013.m4s",
                "http://origin/live/chunk-stream0-00014.m4s",
                "http://origin/live/chunk-stream0-00015.m4s",
            ]
        );
        assert_eq!(
            low.iter()
                .map(|s| (s.sequence, s.duration_ms))
                .collect::<Vec<_>>(),
            [(12, 2000), (13, 2000), (14, 2000), (15, 1000)]
        );
        assert_eq!(
            low[0].init.as_ref().unwrap().url.as_str(),
            "http://origin/live/init-stream0.m4s"
        );
        // r="-1" runs to the next S's t: 1056000 + 4 × 96000 = 1440000.
        let audio = segments(&m, &url(), period, &reps[2], now).unwrap();
        assert_eq!(audio.len(), 5);
        assert_eq!(
            audio[4].media.url.as_str(),
            "http://origin/live/chunk-stream2-1440000.m4s"
        );
    }

    #[test]
    fn live_duration_template_lists_the_complete_segments_in_the_buffer() {
        let m = mpd(r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic"
            availabilityStartTime="2026-11-30T08:00:00Z" timeShiftBufferDepth="PT8S">
          <Period start="PT0S"><AdaptationSet mimeType="video/mp4">
            <SegmentTemplate media="$RepresentationID$/$Number$.m4s" initialization="$RepresentationID$/init.mp4" duration="4" startNumber="0"/>
            <Representation id="hd" bandwidth="5000000" width="1920" height="1080"/>
          </AdaptationSet></Period></MPD>"#);
        let period = &m.periods[0];
        let reps = representations(period);
        // 41 s in: segments 0..9 are complete; the 8 s buffer keeps the last two.
        let got = segments(&m, &url(), period, &reps[0], at("2026-11-30T08:00:41Z")).unwrap();
        assert_eq!(
            urls(&got),
            ["http://origin/live/hd/8.m4s", "http://origin/live/hd/9.m4s"]
        );
        assert_eq!(got[1].duration_ms, 4000);
    }

    #[test]
    fn on_demand_segment_list_with_ranges_and_base_urls() {
        let m = mpd(
            r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT6S">
          <BaseURL>media/</BaseURL>
          <Period><AdaptationSet contentType="video">
            <Representation id="v" bandwidth="1000" width="640" height="360">
              <BaseURL>v.mp4</BaseURL>
              <SegmentList timescale="1000" duration="3000">
                <Initialization range="0-799"/>
                <SegmentURL mediaRange="800-1799"/>
                <SegmentURL mediaRange="1800-2499"/>
              </SegmentList>
            </Representation>
          </AdaptationSet></Period></MPD>"#,
        );
        let period = &m.periods[0];
        let reps = representations(period);
        let got = segments(&m, &url(), period, &reps[0], Utc::now()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].media.url.as_str(), "http://origin/live/media/v.mp4");
        assert_eq!(
            got[1].media.range,
            Some(Range {
                offset: 1800,
                length: 700
            })
        );
        assert_eq!(
            got[0].init.as_ref().unwrap().range,
            Some(Range {
                offset: 0,
                length: 800
            })
        );
        assert_eq!(got[0].duration_ms, 3000);
    }

    #[test]
    fn on_demand_duration_template_covers_the_presentation() {
        let m = mpd(
            r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT9.5S">
          <Period><AdaptationSet mimeType="audio/mp4">
            <Representation id="aac" bandwidth="64000">
              <SegmentTemplate media="a-$Number%03d$.m4s" timescale="1000" duration="2000"/>
            </Representation>
          </AdaptationSet></Period></MPD>"#,
        );
        let period = &m.periods[0];
        let reps = representations(period);
        assert!(reps[0].audio);
        let got = segments(&m, &url(), period, &reps[0], Utc::now()).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[4].media.url.as_str(), "http://origin/live/a-005.m4s");
    }

    #[test]
    fn hostile_repeat_counts_are_bounded() {
        let m = mpd(
            r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" availabilityStartTime="2026-11-30T08:00:00Z">
          <Period><AdaptationSet contentType="video"><Representation id="x" bandwidth="1">
            <SegmentTemplate media="$Number$.m4s"><SegmentTimeline><S t="0" d="1" r="9000000000"/></SegmentTimeline></SegmentTemplate>
          </Representation></AdaptationSet></Period></MPD>"#,
        );
        let period = &m.periods[0];
        let reps = representations(period);
        let got = segments(&m, &url(), period, &reps[0], Utc::now()).unwrap();
        assert_eq!(got.len(), MAX_SEGMENTS);
    }

    #[test]
    fn template_expansion() {
        let vars = Vars {
            id: "v1",
            bandwidth: 800,
        };
        assert_eq!(
            expand(
                "$RepresentationID$_$Bandwidth$/$Number%05d$-$Time$$$.m4s",
                &vars,
                7,
                90
            ),
            "v1_800/00007-90$.m4s"
        );
        assert_eq!(expand("a$Unknown$b$", &vars, 1, 0), "a$Unknown$b$");
    }

    #[test]
    fn the_live_period_is_the_last_started() {
        let m = mpd(
            r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" availabilityStartTime="2026-11-30T08:00:00Z">
          <Period id="a" start="PT0S"/><Period id="b" start="PT60S"/><Period id="c" start="PT120S"/></MPD>"#,
        );
        assert_eq!(current_period(&m, at("2026-11-30T08:01:30Z")), Some(1));
        assert_eq!(current_period(&m, at("2026-11-30T08:00:10Z")), Some(0));
    }

    #[test]
    fn timeline_gaps_and_clock_lag() {
        let m = mpd(LIVE_TIMELINE);
        let period = &m.periods[0];
        let reps = representations(period);
        assert_eq!(timeline_problem(period, &reps[0]), None);
        // Video ends at 281600 + 3 × 25600 + 12800 = 371200 ticks = 29 s.
        let lag = clock_lag(&m, period, &reps[0], at("2026-11-30T08:00:40Z")).unwrap();
        assert!((lag - 11.0).abs() < 1e-9, "{lag}");
        let gappy = mpd(
            r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT10S">
          <Period><AdaptationSet contentType="video"><Representation id="v" bandwidth="1">
            <SegmentTemplate media="$Time$.m4s" timescale="10"><SegmentTimeline>
              <S t="0" d="20" r="1"/><S t="45" d="20"/>
            </SegmentTimeline></SegmentTemplate>
          </Representation></AdaptationSet></Period></MPD>"#,
        );
        let period = &gappy.periods[0];
        let reps = representations(period);
        let problem = timeline_problem(period, &reps[0]).unwrap();
        assert!(problem.contains("gap of 0.500 s"), "{problem}");
        assert_eq!(clock_lag(&gappy, period, &reps[0], Utc::now()), None);
    }
}
