//! Frames: huge length headers, too many fragments, decompression bombs.

use crate::support::*;

// ---- frames --------------------------------------------------------------------

/// A header announcing 2^63 - 1 bytes is refused on the header (1009),
/// nothing allocated; 2^63 itself is not a valid length at all (1002).
#[tokio::test]
pub(crate) async fn a_frame_header_announcing_2_pow_63_bytes_is_closed_before_buffering() {
    let target = Target::start(&[]).await;
    for (length, want) in [(u64::MAX >> 1, 1009), (1u64 << 63, 1002)] {
        let (mut stream, mut buf) = open_raw(2, target.addr, "").await;
        let mut header = vec![FIN_BINARY, 0x80 | 127];
        header.extend_from_slice(&length.to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        header.extend_from_slice(&[0; 1024]);
        stream.write_all(&header).await.unwrap();
        let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
        assert_eq!(ending.close_code, Some(want), "length {length}");
    }
    target.assert_recovered().await;
}

/// A message in more fragments than `max_fragments` (131,072) is closed
/// with 1008.
#[tokio::test]
pub(crate) async fn too_many_fragments_are_closed_with_1008() {
    let target = Target::start(&[]).await;
    let (stream, mut buf) = open_raw(2, target.addr, "").await;
    let (mut reader, mut writer) = stream.into_split();
    let mut bytes = frame(0x02, b"x");
    let continuation = frame(0x00, b"x");
    for _ in 0..140_000 {
        bytes.extend_from_slice(&continuation);
    }
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        writer
    });
    let read = async {
        let mut stream_buf = std::mem::take(&mut buf);
        loop {
            match next_frame(&mut reader, &mut stream_buf).await {
                Some((0x8, payload)) => return Some(u16::from_be_bytes([payload[0], payload[1]])),
                Some(_) => continue,
                None => return None,
            }
        }
    };
    let code = timeout(Duration::from_secs(20), read)
        .await
        .expect("closed in time");
    assert_eq!(code, Some(1008));
    drop(writing.await);
    target.assert_recovered().await;
}

/// [`read_frame`] over a read half.
pub(crate) async fn next_frame(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
) -> Option<(u8, Vec<u8>)> {
    loop {
        if buf.len() >= 2 && buf[1] & 0x7f < 126 {
            let len = usize::from(buf[1] & 0x7f);
            if buf.len() >= 2 + len {
                let opcode = buf[0] & 0x0f;
                buf.advance(2);
                return Some((opcode, buf.split_to(len).to_vec()));
            }
        }
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// 32 MiB of zeros deflated to a few KiB: closed with 1009 (the inflate
/// ratio limit stops it near 1 MiB), never inflated whole.
#[tokio::test]
pub(crate) async fn a_decompression_bomb_is_closed_with_1009() {
    let target = Target::start(&[]).await;
    let (mut stream, mut buf) = open_raw(
        2,
        target.addr,
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    )
    .await;
    let bomb = deflate_zeros(32 << 20);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    // FIN + RSV1 (compressed) + binary.
    stream.write_all(&frame(0xc2, &bomb)).await.unwrap();
    let ending = read_to_eof(&mut stream, &mut buf, READ_BOUND).await;
    assert_eq!(ending.close_code, Some(1009));
    target.assert_recovered().await;
}

/// `len` zero bytes as a permessage-deflate payload (raw DEFLATE, sync
/// flush, without the final `00 00 ff ff`).
pub(crate) fn deflate_zeros(len: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut compress = Compress::new(Compression::best(), false);
    let zeros = vec![0; 1 << 20];
    let mut out = Vec::with_capacity(64 * 1024);
    for _ in 0..len / zeros.len() {
        let mut input = &zeros[..];
        while !input.is_empty() {
            out.reserve(4096);
            let before = compress.total_in();
            compress
                .compress_vec(input, &mut out, FlushCompress::None)
                .expect("deflate");
            input = &input[(compress.total_in() - before) as usize..];
        }
    }
    loop {
        out.reserve(4096);
        let before = compress.total_out();
        compress
            .compress_vec(&[], &mut out, FlushCompress::Sync)
            .expect("deflate");
        if compress.total_out() == before || out.ends_with(&[0, 0, 0xff, 0xff]) {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}
