//! What aws-sdk-s3 puts on the wire for `PutObject`, with its default checksum mode and with
//! the `WhenRequired` mode this store uses. A loopback listener records each request head
//! and answers `200 OK`; no S3 server is needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Serves forever on a loopback port, recording every request head (lower-cased).
async fn recorder() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&heads);
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut socket = BufReader::new(socket);
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line.to_ascii_lowercase());
                    }
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<u64>().unwrap());
                    let mut body = vec![0u8; usize::try_from(length).unwrap()];
                    socket.read_exact(&mut body).await.unwrap();
                    record.lock().unwrap().push(head);
                    let body = if head_is_delete_objects(&record) {
                        "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>"
                    } else {
                        ""
                    };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    socket.get_mut().write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    (url, heads)
}

fn head_is_delete_objects(record: &Mutex<Vec<String>>) -> bool {
    record.lock().unwrap().last().is_some_and(|head| head.starts_with("post ") && head.contains("?delete"))
}

fn client(url: &str, mode: Option<RequestChecksumCalculation>) -> Client {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .credentials_provider(Credentials::new("GKtest", "secret", None, None, "test"))
        .region(Region::new("garage"))
        .endpoint_url(url)
        .force_path_style(true);
    if let Some(mode) = mode {
        builder = builder.request_checksum_calculation(mode);
    }
    Client::from_conf(builder.build())
}

async fn put_heads(mode: Option<RequestChecksumCalculation>) -> (String, String) {
    let (url, heads) = recorder().await;
    let client = client(&url, mode);
    client.put_object().bucket("b").key("in-memory").body(ByteStream::from_static(b"hello")).send().await.unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"hello from a file").unwrap();
    let streaming = ByteStream::from_path(file.path()).await.unwrap();
    client.put_object().bucket("b").key("streaming").body(streaming).send().await.unwrap();
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    (heads[0].clone(), heads[1].clone())
}

#[tokio::test]
async fn default_mode_sends_crc32_and_aws_chunked_trailers() {
    let (memory, streaming) = put_heads(None).await;
    println!("default, in-memory body:\n{memory}\ndefault, streaming body:\n{streaming}");
    assert!(memory.contains("x-amz-checksum-crc32") || memory.contains("x-amz-trailer"), "{memory}");
    assert!(streaming.contains("content-encoding: aws-chunked"), "{streaming}");
    assert!(streaming.contains("x-amz-trailer: x-amz-checksum-crc32"), "{streaming}");
}

#[tokio::test]
async fn when_required_sends_plain_signed_bodies() {
    let (memory, streaming) = put_heads(Some(RequestChecksumCalculation::WhenRequired)).await;
    println!("WhenRequired, in-memory body:\n{memory}\nWhenRequired, streaming body:\n{streaming}");
    for head in [&memory, &streaming] {
        assert!(!head.contains("x-amz-checksum"), "{head}");
        assert!(!head.contains("aws-chunked"), "{head}");
        assert!(!head.contains("x-amz-trailer"), "{head}");
        assert!(head.contains("x-amz-content-sha256: "), "{head}");
    }
}

#[tokio::test]
async fn when_required_still_checksums_delete_objects() {
    let (url, heads) = recorder().await;
    let client = client(&url, Some(RequestChecksumCalculation::WhenRequired));
    let delete = Delete::builder().objects(ObjectIdentifier::builder().key("a").build().unwrap()).build().unwrap();
    client.delete_objects().bucket("b").delete(delete).send().await.unwrap();
    let head = heads.lock().unwrap()[0].clone();
    println!("WhenRequired, DeleteObjects:\n{head}");
    assert!(head.contains("x-amz-checksum-") || head.contains("content-md5"), "{head}");
}
