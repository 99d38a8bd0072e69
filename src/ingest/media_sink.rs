//! What GStreamer's callbacks (appsinks, pad probes, the libav log hook) may do to a stream.
//! They run on streaming threads; through this trait they can place buffers in media time,
//! hand decoded media over and count what they see, and reach nothing else of the stream.

use std::time::Duration;

use crate::config::AnalysisTier;
use crate::detect::captions::CaptionBytes;
use crate::detect::transport::psi::Program;
use crate::detect::transport::tr101290::{TsFindings, TsSettings};
use crate::frame::{AudioBuffer, VideoFrame};
use crate::media::MediaFormat;
use crate::stream::{ProgramChoice, Stream};

pub trait MediaSink: Send + Sync {
    /// The stream's id, for log lines.
    fn id(&self) -> &str;
    /// Media time of a buffer PTS in the current run, and the run's session; None for audio
    /// that waits for the first video frame.
    fn media_time(&self, pts: Duration, video: bool) -> Option<(u64, Duration)>;
    fn push_video(&self, session: u64, frame: VideoFrame);
    /// Keeps audio that came before media time zero.
    fn hold_audio(&self, buffer: AudioBuffer);
    fn push_audio(&self, session: u64, buffer: &AudioBuffer);
    fn count_decode_error(&self);
    fn decode_errors(&self) -> u64;
    /// A video (`video`) or audio decoder element the pipeline created.
    fn set_decoder(&self, factory: &str, video: bool);
    /// Bytes that entered the demuxer.
    fn count_input_bytes(&self, n: u64);
    /// What one buffer entering the demuxer showed: TR 101 290 errors, SCTE-35 cues.
    fn ts_findings(&self, found: TsFindings);
    /// How MPEG-TS input is measured (None: not at all); `segmented`: fetched HLS segments.
    fn ts_settings(&self, segmented: bool) -> Option<TsSettings>;
    /// The run's MPEG-TS input is measured from now on.
    fn ts_measured(&self);
    fn count_rtp_packets_lost(&self, n: u64);
    /// What caps told about the format (a decoder's input, an appsink's raw caps).
    fn update_format(&self, update: &MediaFormat);
    /// The MPEG-TS program the config names.
    fn configured_program(&self) -> Option<u16>;
    /// The program chosen when none is configured, as earlier runs left it.
    fn program_choice(&self) -> ProgramChoice;
    fn set_program_choice(&self, choice: ProgramChoice);
    /// The transport stream's programs changed; `selected` is the one monitored.
    fn set_programs(&self, programs: Vec<Program>, selected: Option<u16>);
    /// The analysis tier the stream's decoder input should follow now.
    fn analysis_tier(&self) -> AnalysisTier;
    /// A coded picture the tier kept from the decoder (it still shows the stream flows).
    fn count_skipped_frame(&self);
    /// A decoded frame reached its sink after its due time.
    fn note_late_frame(&self);
    /// Caption bytes found on a coded picture at the decoder's input (`pts_ns`: its PTS).
    fn count_captions(&self, pts_ns: Option<u64>, bytes: CaptionBytes);
    /// A decoded frame of this PTS is about to be pushed: it takes the captions up to it.
    fn captions_decoded(&self, pts_ns: u64);
}

impl MediaSink for Stream {
    fn id(&self) -> &str {
        &self.id
    }

    fn media_time(&self, pts: Duration, video: bool) -> Option<(u64, Duration)> {
        Stream::media_time(self, pts, video)
    }

    fn push_video(&self, session: u64, frame: VideoFrame) {
        Stream::push_video(self, session, frame);
    }

    fn hold_audio(&self, buffer: AudioBuffer) {
        Stream::hold_audio(self, buffer);
    }

    fn push_audio(&self, session: u64, buffer: &AudioBuffer) {
        Stream::push_audio(self, session, buffer);
    }

    fn count_decode_error(&self) {
        Stream::count_decode_error(self);
    }

    fn decode_errors(&self) -> u64 {
        Stream::decode_errors(self)
    }

    fn set_decoder(&self, factory: &str, video: bool) {
        Stream::set_decoder(self, factory, video);
    }

    fn count_input_bytes(&self, n: u64) {
        Stream::count_input_bytes(self, n);
    }

    fn ts_findings(&self, found: TsFindings) {
        Stream::ts_findings(self, found);
    }

    fn ts_settings(&self, segmented: bool) -> Option<TsSettings> {
        Stream::ts_settings(self, segmented)
    }

    fn ts_measured(&self) {
        Stream::ts_measured(self);
    }

    fn count_rtp_packets_lost(&self, n: u64) {
        Stream::count_rtp_packets_lost(self, n);
    }

    fn update_format(&self, update: &MediaFormat) {
        Stream::update_format(self, update);
    }

    fn configured_program(&self) -> Option<u16> {
        self.config.program
    }

    fn program_choice(&self) -> ProgramChoice {
        Stream::program_choice(self)
    }

    fn set_program_choice(&self, choice: ProgramChoice) {
        Stream::set_program_choice(self, choice);
    }

    fn set_programs(&self, programs: Vec<Program>, selected: Option<u16>) {
        Stream::set_programs(self, programs, selected);
    }

    fn analysis_tier(&self) -> AnalysisTier {
        Stream::analysis_tier(self)
    }

    fn count_skipped_frame(&self) {
        Stream::count_skipped_frame(self);
    }

    fn note_late_frame(&self) {
        Stream::note_late_frame(self);
    }

    fn count_captions(&self, pts_ns: Option<u64>, bytes: CaptionBytes) {
        Stream::count_captions(self, pts_ns, bytes);
    }

    fn captions_decoded(&self, pts_ns: u64) {
        Stream::captions_decoded(self, pts_ns);
    }
}
