//! Live-stream frames: `StreamFrame` (owned, the client and the publisher side) and
//! `StreamFrameRef` (borrowed, what the relay decodes to forward without a copy).
//! Properties: no panic; owned frames round-trip; the borrowed view accepts exactly the
//! bytes the owned type accepts and reads the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_wire::{StreamFrame, StreamFrameRef, decode_body, decode_frame};

fn owned(r: StreamFrameRef<'_>) -> StreamFrame {
    match r {
        StreamFrameRef::Segment { index, last, prefix } => {
            StreamFrame::Segment { index, last, prefix: prefix.to_vec() }
        }
        StreamFrameRef::Message(m) => StreamFrame::Message(m.to_vec()),
        StreamFrameRef::End => StreamFrame::End,
        StreamFrameRef::Viewers(n) => StreamFrame::Viewers(n),
        StreamFrameRef::Skipped(n) => StreamFrame::Skipped(n),
        StreamFrameRef::Aborted(s) => StreamFrame::Aborted(s.to_string()),
    }
}

fuzz_target!(|data: &[u8]| {
    veil_fuzz::check_frame::<StreamFrame>(data);

    let o = decode_body::<StreamFrame>(data);
    let r = decode_body::<StreamFrameRef<'_>>(data);
    match (&o, r) {
        (Ok(o), Ok(r)) => assert_eq!(o, &owned(r)),
        (Err(_), Err(_)) => {}
        (o, r) => panic!("owned and borrowed stream frames disagree: {o:?} vs {r:?}"),
    }
    let o = decode_frame::<StreamFrame>(data);
    let r = decode_frame::<StreamFrameRef<'_>>(data);
    match (o, r) {
        (Ok(Some((o, n))), Ok(Some((r, m)))) => {
            assert_eq!(o, owned(r));
            assert_eq!(n, m);
        }
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
        (o, r) => panic!("owned and borrowed stream frames disagree: {o:?} vs {r:?}"),
    }
});
