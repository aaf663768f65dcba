//! A hand-made ACME client for what a real client never sends: each JWS algorithm the server
//! accepts (RS256, ES256, ES384, EdDSA), and broken requests (bad signatures, replayed nonces,
//! wrong URLs, unknown accounts).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub enum SigningKey {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl SigningKey {
    pub fn generate(alg: &str) -> Self {
        match alg {
            "RS256" => {
                Self::Rsa(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key"))
            }
            "ES256" => Self::P256(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("key"),
            ),
            "ES384" => Self::P384(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).expect("key"),
            ),
            "EdDSA" => Self::Ed25519(Ed25519KeyPair::generate().expect("key")),
            other => panic!("no such algorithm {other}"),
        }
    }

    /// A P-256 key from its PKCS#8 DER (a certificate's key, for revocation by that key).
    pub fn p256_from_pkcs8(der: &[u8]) -> Self {
        Self::P256(
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .expect("P-256 PKCS#8"),
        )
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RS256",
            Self::P256(_) => "ES256",
            Self::P384(_) => "ES384",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    pub fn jwk(&self) -> Value {
        match self {
            Self::Rsa(k) => {
                let public = k.public_key();
                let n = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(public);
                json!({"kty": "RSA", "n": B64.encode(&n.n), "e": B64.encode(&n.e)})
            }
            Self::P256(k) | Self::P384(k) => {
                let point = k.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                let crv = if half == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "x": B64.encode(&point[1..=half]), "y": B64.encode(&point[1 + half..])})
            }
            Self::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.public_key().as_ref())})
            }
        }
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, input, &mut sig)
                    .expect("RSA signature");
                sig
            }
            Self::P256(k) | Self::P384(k) => {
                k.sign(&rng, input).expect("signature").as_ref().to_vec()
            }
            Self::Ed25519(k) => k.sign(input).as_ref().to_vec(),
        }
    }
}

/// A flattened JWS over `payload` (`None`: POST-as-GET) with `header` as its protected header.
pub fn jws(key: &SigningKey, header: &Value, payload: Option<&Value>) -> Value {
    let protected = B64.encode(header.to_string());
    let payload = payload
        .map(|p| B64.encode(p.to_string()))
        .unwrap_or_default();
    let signature = key.sign(format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": B64.encode(signature)})
}

/// An account driven by hand.
pub struct RawClient {
    pub http: reqwest::Client,
    pub directory: Value,
    pub key: SigningKey,
    pub kid: Option<String>,
}

/// A response: status, headers, body as JSON (or Null).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl RawClient {
    pub async fn new(http: reqwest::Client, directory_url: &str, alg: &str) -> Self {
        let directory = http
            .get(directory_url)
            .send()
            .await
            .expect("directory")
            .json()
            .await
            .expect("directory JSON");
        Self {
            http,
            directory,
            key: SigningKey::generate(alg),
            kid: None,
        }
    }

    pub fn url(&self, name: &str) -> String {
        self.directory[name].as_str().unwrap_or_default().to_owned()
    }

    pub async fn nonce(&self) -> String {
        let response = self
            .http
            .head(self.url("newNonce"))
            .send()
            .await
            .expect("nonce");
        response.headers()["replay-nonce"]
            .to_str()
            .expect("nonce text")
            .to_owned()
    }

    /// The protected header a correct request to `url` carries.
    pub async fn header(&self, url: &str) -> Value {
        let mut header = json!({"alg": self.key.alg(), "nonce": self.nonce().await, "url": url});
        match &self.kid {
            Some(kid) => header["kid"] = json!(kid),
            None => header["jwk"] = self.key.jwk(),
        }
        header
    }

    pub async fn send(&self, url: &str, body: &Value) -> Reply {
        let response = self
            .http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(body.to_string())
            .send()
            .await
            .expect("ACME request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// A correct request.
    pub async fn post(&self, url: &str, payload: Option<&Value>) -> Reply {
        let header = self.header(url).await;
        self.send(url, &jws(&self.key, &header, payload)).await
    }

    /// Registers, keeping the account URL as the kid from now on.
    pub async fn register(&mut self) -> Reply {
        let reply = self
            .post(
                &self.url("newAccount"),
                Some(
                    &json!({"termsOfServiceAgreed": true, "contact": ["mailto:raw@example.test"]}),
                ),
            )
            .await;
        self.kid = Some(reply.header("location").to_owned());
        reply
    }
}
