//! The libavcodec calls the decoder element makes, behind owning types that free what libav
//! allocated. Everything `unsafe` about libav is in this file.

use std::ptr;
use std::sync::Arc;

use ffmpeg_sys_next as ff;
use gstreamer as gst;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

/// `AVERROR(EAGAIN)`: the decoder wants more input before it gives out a frame.
const AGAIN: i32 = -(ff::EAGAIN);

/// libav's text for an error code.
pub fn error_text(code: i32) -> String {
    let mut text = [0 as std::ffi::c_char; 128];
    // SAFETY: the buffer and its length are valid; av_strerror always NUL-terminates it.
    unsafe {
        ff::av_strerror(code, text.as_mut_ptr(), text.len());
        std::ffi::CStr::from_ptr(text.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The libav codec for a GStreamer caps name the element accepts.
pub fn codec_for_caps(name: &str) -> Option<ff::AVCodecID> {
    match name {
        "video/x-h264" => Some(ff::AVCodecID::AV_CODEC_ID_H264),
        "video/x-h265" => Some(ff::AVCodecID::AV_CODEC_ID_HEVC),
        _ => None,
    }
}

/// An open decoder and the packet it is fed through.
pub struct Codec {
    context: *mut ff::AVCodecContext,
    packet: *mut ff::AVPacket,
    pub id: ff::AVCodecID,
}

// SAFETY: a codec context is used by one thread at a time (the element's state mutex), which
// libav allows; its slice workers are its own business.
unsafe impl Send for Codec {}

impl Codec {
    /// Opens libav's decoder for `id`, slice-threaded with `threads` workers (0: one per
    /// core). Slice threads finish each frame before the next, which keeps decoder errors
    /// credited to the frame they damaged (see `decode_errors`).
    pub fn open(id: ff::AVCodecID, threads: i32) -> Result<Self, String> {
        // SAFETY: plain libav allocation and opening, each result checked before use; on
        // failure what was allocated is freed by `Drop` (null pointers are skipped).
        unsafe {
            let decoder = ff::avcodec_find_decoder(id);
            if decoder.is_null() {
                return Err(format!("libavcodec has no decoder for {id:?}"));
            }
            let mut codec = Self {
                context: ff::avcodec_alloc_context3(decoder),
                packet: ff::av_packet_alloc(),
                id,
            };
            if codec.context.is_null() || codec.packet.is_null() {
                return Err("libavcodec could not allocate a decoder".into());
            }
            (*codec.context).thread_count = threads.max(0);
            (*codec.context).thread_type = ff::FF_THREAD_SLICE;
            let opened = ff::avcodec_open2(codec.context, decoder, ptr::null_mut());
            if opened < 0 {
                codec.context_free();
                return Err(format!("cannot open the decoder: {}", error_text(opened)));
            }
            Ok(codec)
        }
    }

    fn context_free(&mut self) {
        // SAFETY: frees a context this type allocated (or null), and nulls the pointer.
        unsafe { ff::avcodec_free_context(&mut self.context) };
    }

    /// Feeds one access unit; `number` comes back as the PTS of the frame it decodes to
    /// (libav carries a packet's PTS through its reordering). Err is libav's error code.
    pub fn send(&mut self, data: &[u8], number: u32) -> Result<(), i32> {
        let size = i32::try_from(data.len()).map_err(|_| ff::AVERROR_INVALIDDATA)?;
        // SAFETY: av_new_packet allocates `size` bytes plus zeroed padding, which libav's
        // bitstream readers need; `data` is copied into it, then the packet is unreferenced.
        unsafe {
            let allocated = ff::av_new_packet(self.packet, size);
            if allocated < 0 {
                return Err(allocated);
            }
            ptr::copy_nonoverlapping(data.as_ptr(), (*self.packet).data, data.len());
            (*self.packet).pts = i64::from(number);
            let sent = ff::avcodec_send_packet(self.context, self.packet);
            ff::av_packet_unref(self.packet);
            if sent < 0 { Err(sent) } else { Ok(()) }
        }
    }

    /// Tells the decoder no more input comes, so that it gives out the frames it holds.
    pub fn send_end(&mut self) {
        // SAFETY: a null packet is libav's end-of-stream signal.
        unsafe { ff::avcodec_send_packet(self.context, ptr::null()) };
    }

    /// The next decoded frame, None when the decoder needs more input (or is drained).
    pub fn receive(&mut self) -> Result<Option<DecodedFrame>, i32> {
        // SAFETY: the frame is freed by DecodedFrame's Drop whatever happens next.
        let frame = DecodedFrame(unsafe { ff::av_frame_alloc() });
        if frame.0.is_null() {
            return Err(-(ff::ENOMEM));
        }
        // SAFETY: both pointers are valid; receive_frame fills the frame with references.
        match unsafe { ff::avcodec_receive_frame(self.context, frame.0) } {
            0 => Ok(Some(frame)),
            AGAIN | ff::AVERROR_EOF => Ok(None),
            e => Err(e),
        }
    }

    /// Forgets every frame held for reordering (after a flush or a drain).
    pub fn reset(&mut self) {
        // SAFETY: the context is open.
        unsafe { ff::avcodec_flush_buffers(self.context) };
    }

    /// Frames the decoder holds back to reorder B-frames: the latency it adds.
    pub fn reorder_depth(&self) -> u32 {
        // SAFETY: the context is open; a plain field read.
        u32::try_from(unsafe { (*self.context).has_b_frames }).unwrap_or(0)
    }
}

impl Drop for Codec {
    fn drop(&mut self) {
        self.context_free();
        // SAFETY: frees the packet this type allocated (or null).
        unsafe { ff::av_packet_free(&mut self.packet) };
    }
}

/// A frame libav decoded, with references on its pixel buffers.
pub struct DecodedFrame(*mut ff::AVFrame);

// SAFETY: libav never writes to a frame once it has given it out (frames it keeps as
// references are only read), and its buffer references are counted atomically; so the
// frame may be read from, and freed on, any thread.
unsafe impl Send for DecodedFrame {}
unsafe impl Sync for DecodedFrame {}

impl Drop for DecodedFrame {
    fn drop(&mut self) {
        // SAFETY: frees the frame and drops its buffer references.
        unsafe { ff::av_frame_free(&mut self.0) };
    }
}

/// What GStreamer needs to describe a decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub format: gst_video::VideoFormat,
    pub width: u32,
    pub height: u32,
    pub interlaced: bool,
}

impl DecodedFrame {
    fn frame(&self) -> &ff::AVFrame {
        // SAFETY: non-null (checked at allocation) and filled by receive_frame.
        unsafe { &*self.0 }
    }

    /// The system frame number of the input this frame was decoded from.
    pub fn number(&self) -> Option<u32> {
        u32::try_from(self.frame().pts).ok()
    }

    pub fn corrupt(&self) -> bool {
        self.frame().flags & ff::AV_FRAME_FLAG_CORRUPT != 0
    }

    pub fn top_field_first(&self) -> bool {
        self.frame().top_field_first != 0
    }

    pub fn repeats_field(&self) -> bool {
        self.frame().repeat_pict != 0
    }

    /// The frame's format, size and scan; None for a pixel format GStreamer is not told
    /// about here.
    pub fn shape(&self) -> Option<Shape> {
        let f = self.frame();
        Some(Shape {
            format: video_format(f.format)?,
            width: u32::try_from(f.width).ok().filter(|&w| w > 0)?,
            height: u32::try_from(f.height).ok().filter(|&h| h > 0)?,
            interlaced: f.interlaced_frame != 0,
        })
    }

    /// Plane `plane`'s first byte, stride and the bytes of `rows` rows, when they lie inside
    /// one of the frame's buffers.
    fn plane(&self, plane: usize, rows: u32) -> Option<(*const u8, i32, usize)> {
        let f = self.frame();
        let (data, stride) = (*f.data.get(plane)?, *f.linesize.get(plane)?);
        let len = usize::try_from(stride).ok()?.checked_mul(rows as usize)?;
        if data.is_null() || len == 0 {
            return None;
        }
        let start = data as usize;
        let inside = f.buf.iter().any(|&buf| {
            // SAFETY: non-null buffer references of a live frame.
            !buf.is_null()
                && unsafe {
                    let (base, size) = ((*buf).data as usize, (*buf).size);
                    start >= base && start + len <= base + size
                }
        });
        inside.then_some((data.cast_const(), stride, len))
    }
}

/// libav's planar formats that GStreamer names, the ones its H.264 and H.265 decoders give.
fn video_format(format: i32) -> Option<gst_video::VideoFormat> {
    use ff::AVPixelFormat as P;
    use gst_video::VideoFormat as V;
    let table = [
        (P::AV_PIX_FMT_YUV420P, V::I420),
        (P::AV_PIX_FMT_YUVJ420P, V::I420),
        (P::AV_PIX_FMT_YUV422P, V::Y42b),
        (P::AV_PIX_FMT_YUVJ422P, V::Y42b),
        (P::AV_PIX_FMT_YUV444P, V::Y444),
        (P::AV_PIX_FMT_YUVJ444P, V::Y444),
        (P::AV_PIX_FMT_GRAY8, V::Gray8),
        (P::AV_PIX_FMT_YUV420P10LE, V::I42010le),
        (P::AV_PIX_FMT_YUV422P10LE, V::I42210le),
        (P::AV_PIX_FMT_YUV444P10LE, V::Y44410le),
    ];
    table
        .into_iter()
        .find(|&(av, _)| av as i32 == format)
        .map(|(_, gst)| gst)
}

/// One plane of a decoded frame as GStreamer memory: it keeps the whole frame alive.
struct PlaneBytes {
    /// Held only to keep the frame's buffers referenced.
    _frame: Arc<DecodedFrame>,
    start: *const u8,
    len: usize,
}

// SAFETY: the bytes belong to `frame`, which is Send + Sync and outlives this value.
unsafe impl Send for PlaneBytes {}

impl AsRef<[u8]> for PlaneBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `start..start + len` lies inside one of the frame's buffers (checked by
        // `plane`), which `self._frame` keeps referenced and libav no longer writes.
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }
}

/// The frame's planes as a buffer of their own, without copying a pixel: one memory per
/// plane and a video meta with libav's strides. None when a plane is not where expected.
pub fn wrap(frame: DecodedFrame, shape: &Shape) -> Option<gst::Buffer> {
    let info = gst_video::VideoFormatInfo::from_format(shape.format);
    let frame = Arc::new(frame);
    let mut buffer = gst::Buffer::new();
    let target = buffer.get_mut()?;
    let (mut offsets, mut strides) = (Vec::new(), Vec::new());
    let mut offset = 0;
    for plane in 0..info.n_planes() as usize {
        let rows = info.scale_height(plane as u8, shape.height);
        let (start, stride, len) = frame.plane(plane, rows)?;
        offsets.push(offset);
        strides.push(stride);
        offset += len;
        target.append_memory(gst::Memory::from_slice(PlaneBytes {
            _frame: frame.clone(),
            start,
            len,
        }));
    }
    gst_video::VideoMeta::add_full(
        target,
        gst_video::VideoFrameFlags::empty(),
        shape.format,
        shape.width,
        shape.height,
        &offsets,
        &strides,
    )
    .ok()?;
    Some(buffer)
}

/// Copies the frame's planes into `target`, a mapped frame of the same format and size (for
/// a downstream that cannot read strides from a video meta).
pub fn copy_into(
    frame: &DecodedFrame,
    target: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
) -> Option<()> {
    let info = target.format_info();
    let height = target.height();
    let width = target.width();
    for plane in 0..info.n_planes() {
        let rows = info.scale_height(plane as u8, height) as usize;
        let row_bytes = info.scale_width(plane as u8, width) as usize
            * info.pixel_stride()[plane as usize] as usize;
        let (start, stride, len) = frame.plane(plane as usize, rows as u32)?;
        // SAFETY: `plane` checked that these bytes lie inside the frame's buffer.
        let source = unsafe { std::slice::from_raw_parts(start, len) };
        let to_stride = usize::try_from(target.plane_stride()[plane as usize]).ok()?;
        let to = target.plane_data_mut(plane).ok()?;
        let from_stride = usize::try_from(stride).ok()?;
        for row in 0..rows {
            let from = source.get(row * from_stride..row * from_stride + row_bytes)?;
            to.get_mut(row * to_stride..row * to_stride + row_bytes)?
                .copy_from_slice(from);
        }
    }
    Some(())
}
