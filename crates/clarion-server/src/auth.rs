//! JWT connection and subscription tokens (HS256, RS256, ES256), and the
//! hub's [`TokenVerifier`] on top of them.
//!
//! A connection token's claims: `sub` (the user, required), `exp`
//! (optional: without it the session never expires), `info` (any JSON,
//! shown in presence and join/leave), `channels` (subscribed on connect).
//! A subscription token's: `sub` (the same user as the connection),
//! `channel` (the channel it grants), `exp`, `info` (as `chan_info`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clarion_hub::{Credentials, RefreshCheck, SubscriptionCheck, SubscriptionGrant, TokenVerifier};
use clarion_wire::{Data, ErrorCode, ReplyError};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;

/// The verification keys from the config, one per algorithm family.
pub struct Keys {
    hmac: Option<DecodingKey>,
    rsa: Option<DecodingKey>,
    ec: Option<DecodingKey>,
    leeway: u64,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("hmac", &self.hmac.is_some())
            .field("rsa", &self.rsa.is_some())
            .field("ec", &self.ec.is_some())
            .finish()
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Bad signature, unknown algorithm, malformed, wrong claims.
    Invalid(String),
    /// Valid but past its `exp`.
    Expired,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Invalid(why) => write!(f, "invalid token: {why}"),
            TokenError::Expired => f.write_str("token expired"),
        }
    }
}

impl std::error::Error for TokenError {}

#[derive(Debug, Deserialize)]
struct ConnectionClaims {
    sub: String,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    info: Option<serde_json::Value>,
    #[serde(default)]
    channels: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct SubscriptionClaims {
    sub: String,
    channel: String,
    #[serde(default)]
    info: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<u64>,
}

impl Keys {
    /// Reads the keys the config names (PEM files for RS256 and ES256).
    pub fn load(auth: &AuthConfig) -> Result<Keys, String> {
        let pem = |path: &std::path::PathBuf| {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let rsa = match &auth.rsa_public_key {
            Some(path) => Some(
                DecodingKey::from_rsa_pem(&pem(path)?)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            ),
            None => None,
        };
        let ec = match &auth.ecdsa_public_key {
            Some(path) => Some(
                DecodingKey::from_ec_pem(&pem(path)?)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            ),
            None => None,
        };
        let hmac = auth
            .hmac_secret
            .as_deref()
            .map(|s| DecodingKey::from_secret(s.as_bytes()));
        Ok(Keys {
            hmac,
            rsa,
            ec,
            leeway: auth.leeway_secs,
        })
    }

    /// Whether any key is configured (otherwise every token is invalid).
    pub fn any(&self) -> bool {
        self.hmac.is_some() || self.rsa.is_some() || self.ec.is_some()
    }

    fn verify<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let key = match header.alg {
            Algorithm::HS256 => self.hmac.as_ref(),
            Algorithm::RS256 => self.rsa.as_ref(),
            Algorithm::ES256 => self.ec.as_ref(),
            other => return Err(TokenError::Invalid(format!("algorithm {other:?}"))),
        };
        let key = key.ok_or_else(|| {
            TokenError::Invalid(format!("no key configured for {:?}", header.alg))
        })?;
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.leeway = self.leeway;
        validation.validate_aud = false;
        match decode::<T>(token, key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(TokenError::Expired),
                _ => Err(TokenError::Invalid(e.to_string())),
            },
        }
    }

    /// Verifies a connection token into the session's credentials.
    pub fn connection(&self, token: &str) -> Result<Credentials, TokenError> {
        let claims: ConnectionClaims = self.verify(token)?;
        if claims.sub.is_empty() {
            return Err(TokenError::Invalid("empty sub".into()));
        }
        let info = claims
            .info
            .map(|v| Data::from_value(&v))
            .transpose()
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok(Credentials {
            user: claims.sub,
            info,
            channels: claims.channels,
            ttl: claims
                .exp
                .map(|exp| ttl_until(exp.saturating_add(self.leeway))),
        })
    }
}

/// Time from now until the unix time `exp` (zero if past).
fn ttl_until(exp: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(exp).saturating_sub(now)
}

fn reply_error(e: &TokenError) -> ReplyError {
    match e {
        TokenError::Expired => ReplyError::new(ErrorCode::TokenExpired),
        TokenError::Invalid(_) => ReplyError::new(ErrorCode::Unauthorized),
    }
}

impl TokenVerifier for Keys {
    fn verify_subscription(
        &self,
        check: &SubscriptionCheck<'_>,
    ) -> Result<SubscriptionGrant, ReplyError> {
        let claims: SubscriptionClaims = self.verify(check.token).map_err(|e| reply_error(&e))?;
        if claims.sub != check.user || claims.channel != check.channel {
            return Err(ReplyError::new(ErrorCode::Unauthorized));
        }
        let info = claims.info.map(|v| Data::from_value(&v)).transpose();
        let info = info.map_err(|_| ReplyError::new(ErrorCode::Unauthorized))?;
        // Accepted up to `exp` + leeway, so it lives that long too.
        let ttl = claims
            .exp
            .map(|exp| ttl_until(exp.saturating_add(self.leeway)));
        Ok(SubscriptionGrant { info, ttl })
    }

    fn verify_refresh(&self, check: &RefreshCheck<'_>) -> Result<Option<Duration>, ReplyError> {
        let creds = self.connection(check.token).map_err(|e| reply_error(&e))?;
        if creds.user != check.user {
            return Err(ReplyError::new(ErrorCode::Unauthorized));
        }
        Ok(creds.ttl)
    }
}

/// The claims of a token to mint (`clarion token`, tests).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MintClaims {
    /// The user.
    pub sub: String,
    /// Expiry, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Connection (or channel) info.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Value>,
    /// Channels to subscribe on connect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// For a subscription token: the channel it grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// Signs `claims` with HS256 and `secret`.
pub fn mint_hs256(secret: &str, claims: &MintClaims) -> Result<String, TokenError> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let header = jsonwebtoken::Header::new(Algorithm::HS256);
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| TokenError::Invalid(e.to_string()))
}

/// Unix seconds `ttl` from now.
pub fn expires_in(ttl: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + ttl).as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> Keys {
        let auth = AuthConfig {
            hmac_secret: Some(secret.into()),
            ..AuthConfig::default()
        };
        Keys::load(&auth).unwrap()
    }

    #[test]
    fn hs256_round_trip_and_rejections() {
        let claims = MintClaims {
            sub: "alice".into(),
            exp: Some(expires_in(Duration::from_secs(60))),
            info: Some(serde_json::json!({"name": "Alice"})),
            channels: vec!["chat:lobby".into()],
            channel: None,
        };
        let token = mint_hs256("s3cret", &claims).unwrap();
        let creds = keys("s3cret").connection(&token).unwrap();
        assert_eq!(creds.user, "alice");
        assert_eq!(creds.channels, ["chat:lobby"]);
        assert!(creds.ttl.unwrap() <= Duration::from_secs(60));
        assert!(matches!(
            keys("other").connection(&token),
            Err(TokenError::Invalid(_))
        ));
        let expired = MintClaims {
            exp: Some(1),
            ..claims
        };
        let token = mint_hs256("s3cret", &expired).unwrap();
        assert_eq!(keys("s3cret").connection(&token), Err(TokenError::Expired));
        assert!(keys("s3cret").connection("not.a.jwt").is_err());
    }

    #[test]
    fn es256_tokens_verify_with_the_public_key() {
        let pair = rcgen::KeyPair::generate().unwrap(); // ECDSA P-256
        let dir = std::env::temp_dir().join(format!("clarion-es256-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let public = dir.join("public.pem");
        std::fs::write(&public, pair.public_key_pem()).unwrap();
        let auth = AuthConfig {
            ecdsa_public_key: Some(public),
            ..AuthConfig::default()
        };
        let keys = Keys::load(&auth).unwrap();
        let private = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes());
        let claims = MintClaims {
            sub: "eve".into(),
            ..MintClaims::default()
        };
        let header = jsonwebtoken::Header::new(Algorithm::ES256);
        let token = jsonwebtoken::encode(&header, &claims, &private.unwrap()).unwrap();
        assert_eq!(keys.connection(&token).unwrap().user, "eve");
        // No HS256 key configured: an HS256 token is refused.
        let hs = mint_hs256("whatever", &claims).unwrap();
        assert!(matches!(keys.connection(&hs), Err(TokenError::Invalid(_))));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn rs256_tokens_verify_with_the_public_key() {
        let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let auth = AuthConfig {
            rsa_public_key: Some(testdata.join("rs256-test-public.pem")),
            ..AuthConfig::default()
        };
        let keys = Keys::load(&auth).unwrap();
        let private_pem = std::fs::read(testdata.join("rs256-test-private.pem")).unwrap();
        let private = jsonwebtoken::EncodingKey::from_rsa_pem(&private_pem).unwrap();
        let claims = MintClaims {
            sub: "rita".into(),
            ..MintClaims::default()
        };
        let header = jsonwebtoken::Header::new(Algorithm::RS256);
        let token = jsonwebtoken::encode(&header, &claims, &private).unwrap();
        assert_eq!(keys.connection(&token).unwrap().user, "rita");
        // A tampered payload no longer matches the signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = MintClaims {
            sub: "mallory".into(),
            ..MintClaims::default()
        };
        let forged = mint_hs256("x", &forged_claims).unwrap();
        parts[1] = forged.split('.').nth(1).unwrap();
        assert!(matches!(
            keys.connection(&parts.join(".")),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn subscription_tokens_name_the_user_and_channel() {
        let claims = MintClaims {
            sub: "bob".into(),
            channel: Some("private:x".into()),
            ..MintClaims::default()
        };
        let token = mint_hs256("k", &claims).unwrap();
        let check = |user, channel| SubscriptionCheck {
            client: "c",
            user,
            channel,
            token: &token,
        };
        assert!(keys("k")
            .verify_subscription(&check("bob", "private:x"))
            .is_ok());
        assert!(keys("k")
            .verify_subscription(&check("eve", "private:x"))
            .is_err());
        assert!(keys("k")
            .verify_subscription(&check("bob", "private:y"))
            .is_err());
    }
}
