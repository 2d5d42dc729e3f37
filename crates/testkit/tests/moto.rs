//! The testkit's moto server, against the real `moto_server`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use ragshift_testkit::{shared_moto, unique_name, MotoServer};

/// A DynamoDB JSON call with a dummy SigV4 header (moto does not check signatures).
fn dynamodb(endpoint: &str, action: &str, body: &str) -> String {
    let host = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connect to moto");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: DynamoDB_20120810.{action}\r\n\
         Content-Type: application/x-amz-json-1.0\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/dynamodb/aws4_request, \
         SignedHeaders=host;x-amz-target, Signature=00\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[test]
fn moto_answers_dynamodb() {
    let moto = MotoServer::start();
    assert_eq!(
        moto.endpoint_url(),
        format!("http://127.0.0.1:{}", moto.port())
    );
    let response = dynamodb(moto.endpoint_url(), "ListTables", "{}");
    assert!(response.contains("\"TableNames\""), "{response}");
}

#[test]
fn shared_moto_keeps_tests_apart_by_name() {
    let moto = shared_moto();
    let table = unique_name("bots");
    let create = format!(
        r#"{{"TableName":"{table}","KeySchema":[{{"AttributeName":"PK","KeyType":"HASH"}}],
            "AttributeDefinitions":[{{"AttributeName":"PK","AttributeType":"S"}}],
            "BillingMode":"PAY_PER_REQUEST"}}"#
    );
    dynamodb(moto.endpoint_url(), "CreateTable", &create);
    let listed = dynamodb(moto.endpoint_url(), "ListTables", "{}");
    assert!(listed.contains(&table), "{listed}");
    let env = moto.aws_env();
    assert!(env
        .iter()
        .any(|(k, v)| *k == "AWS_ENDPOINT_URL" && v == moto.endpoint_url()));
}
