//! Checking an ID token before anything in it is believed: signed by a key
//! of the IdP's (an asymmetric algorithm the IdP says it uses; never `none`
//! or a shared-secret algorithm a forged header could pick), issued by the
//! configured issuer, for this client, not expired and not issued in the
//! future (a minute's clock skew allowed), and carrying the nonce the broker
//! sent, when it sent one. The JOSE work is `jsonwebtoken`'s.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};

/// Clock skew allowed between the IdP and the broker.
pub const LEEWAY_SECS: u64 = 60;

/// Why an ID token was refused, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    #[error("it is not a signed JWT")]
    Malformed,
    #[error("it is signed with {0}, which jit does not accept for ID tokens")]
    Algorithm(String),
    #[error("it is signed by a key the IdP does not publish (kid {0})")]
    UnknownKey(String),
    #[error("its signature does not verify")]
    BadSignature,
    #[error("it was issued by another issuer")]
    WrongIssuer,
    #[error("it is meant for another client (aud/azp)")]
    WrongAudience,
    #[error("it has expired")]
    Expired,
    #[error("it was issued in the future (check the clocks)")]
    IssuedInFuture,
    #[error("its nonce does not match this sign-in's (a replayed or mixed-up token)")]
    WrongNonce,
    #[error("its `{0}` claim is missing or malformed")]
    Claim(String),
}

impl TokenRefused {
    /// The stable name of the reason, for logs and audit details.
    pub fn code(&self) -> &'static str {
        match self {
            TokenRefused::Malformed => "malformed",
            TokenRefused::Algorithm(_) => "algorithm",
            TokenRefused::UnknownKey(_) => "unknown_key",
            TokenRefused::BadSignature => "bad_signature",
            TokenRefused::WrongIssuer => "wrong_issuer",
            TokenRefused::WrongAudience => "wrong_audience",
            TokenRefused::Expired => "expired",
            TokenRefused::IssuedInFuture => "issued_in_future",
            TokenRefused::WrongNonce => "wrong_nonce",
            TokenRefused::Claim(_) => "claim",
        }
    }
}

/// Asymmetric algorithms only: with a shared-secret one, the IdP's public key could sign.
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What a token must say to be believed.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The algorithms the IdP's discovery lists (empty: any of [`ACCEPTED`]).
    pub algorithms: &'a [String],
    pub nonce: Option<&'a str>,
    /// Now, in seconds since the epoch.
    pub now: u64,
}

/// The key id a token names (to refetch the IdP's keys when it is unknown).
pub fn key_id(token: &str) -> Result<Option<String>, TokenRefused> {
    Ok(decode_header(token).map_err(|_| TokenRefused::Malformed)?.kid)
}

/// Whether `keys` has the key `token` names.
pub fn has_key(keys: &JwkSet, token: &str) -> bool {
    match key_id(token) {
        Ok(Some(kid)) => keys.find(&kid).is_some(),
        Ok(None) => keys.keys.len() == 1,
        Err(_) => true,
    }
}

/// The claims of `token`, verified against `keys` and `expected`.
pub fn verify(token: &str, keys: &JwkSet, expected: &Expected) -> Result<Map<String, Value>, TokenRefused> {
    let header = decode_header(token).map_err(|_| TokenRefused::Malformed)?;
    let alg = header.alg;
    let listed = expected.algorithms.is_empty() || expected.algorithms.iter().any(|a| a == &format!("{alg:?}"));
    if !ACCEPTED.contains(&alg) || !listed {
        return Err(TokenRefused::Algorithm(format!("{alg:?}")));
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid).ok_or_else(|| TokenRefused::UnknownKey(kid.clone()))?,
        // No kid: only an IdP with a single key may do that.
        None if keys.keys.len() == 1 => &keys.keys[0],
        None => return Err(TokenRefused::UnknownKey("none given".to_string())),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|_| TokenRefused::UnknownKey(header.kid.clone().unwrap_or_default()))?;
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_audience(&[expected.client_id]);
    validation.set_issuer(&[expected.issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => TokenRefused::BadSignature,
                ErrorKind::ExpiredSignature => TokenRefused::Expired,
                ErrorKind::InvalidIssuer => TokenRefused::WrongIssuer,
                ErrorKind::InvalidAudience => TokenRefused::WrongAudience,
                ErrorKind::ImmatureSignature => TokenRefused::IssuedInFuture,
                ErrorKind::MissingRequiredClaim(c) => TokenRefused::Claim(c.clone()),
                ErrorKind::InvalidAlgorithm => TokenRefused::Algorithm(format!(
                    "{alg:?} with a {} key",
                    jwk.common.key_algorithm.map(|a| format!("{a:?}")).unwrap_or_default()
                )),
                _ => TokenRefused::Malformed,
            }
        })?
        .claims;
    let iat = claims.get("iat").and_then(Value::as_u64).ok_or_else(|| TokenRefused::Claim("iat".to_string()))?;
    if iat > expected.now + LEEWAY_SECS {
        return Err(TokenRefused::IssuedInFuture);
    }
    // Several audiences: the token must say it was issued to this client.
    if claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1)
        && claims.get("azp").and_then(Value::as_str) != Some(expected.client_id)
    {
        return Err(TokenRefused::WrongAudience);
    }
    if let Some(nonce) = expected.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err(TokenRefused::WrongNonce);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    // A test-only RSA key (tests/fixtures/oidc-test.pem) and its public half as a JWK.
    const PEM: &[u8] = include_bytes!("../../../tests/fixtures/oidc-test.pem");
    const JWKS: &str = include_str!("../../../tests/fixtures/oidc-test.jwks.json");
    const OTHER_PEM: &[u8] = include_bytes!("../../../tests/fixtures/github-app-test.pem");

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn keys() -> JwkSet {
        serde_json::from_str(JWKS).unwrap()
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example", "aud": "jit", "sub": "u-1", "iat": now(), "exp": now() + 300, "nonce": "n-1", "preferred_username": "alice"})
    }

    fn sign(claims: &Value, kid: Option<&str>, pem: &[u8]) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_string);
        encode(&header, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
    }

    fn check(token: &str, nonce: Option<&str>) -> Result<Map<String, Value>, TokenRefused> {
        let algorithms = ["RS256".to_string()];
        verify(token, &keys(), &Expected { issuer: "https://idp.example", client_id: "jit", algorithms: &algorithms, nonce, now: now() })
    }

    fn with(change: &[(&str, Value)]) -> String {
        let mut c = claims();
        for (k, v) in change {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(*k);
            } else {
                c[*k] = v.clone();
            }
        }
        sign(&c, Some("test-1"), PEM)
    }

    #[test]
    fn a_good_token_gives_its_claims() {
        let got = check(&sign(&claims(), Some("test-1"), PEM), Some("n-1")).unwrap();
        assert_eq!(got["preferred_username"], "alice");
        check(&with(&[("aud", json!(["jit", "other"])), ("azp", json!("jit"))]), None).unwrap();
    }

    #[test]
    fn every_bad_token_is_refused_with_its_reason() {
        let cases: Vec<(String, TokenRefused)> = vec![
            (with(&[("aud", json!("other"))]), TokenRefused::WrongAudience),
            (with(&[("aud", json!(["jit", "other"]))]), TokenRefused::WrongAudience),
            (with(&[("iss", json!("https://evil.example"))]), TokenRefused::WrongIssuer),
            (with(&[("exp", json!(now() - 120)), ("iat", json!(now() - 600))]), TokenRefused::Expired),
            (with(&[("iat", json!(now() + 600)), ("exp", json!(now() + 900))]), TokenRefused::IssuedInFuture),
            (with(&[("nonce", json!("n-2"))]), TokenRefused::WrongNonce),
            (with(&[("nonce", Value::Null)]), TokenRefused::WrongNonce),
            (with(&[("sub", Value::Null)]), TokenRefused::Claim("sub".into())),
            (sign(&claims(), Some("test-1"), OTHER_PEM), TokenRefused::BadSignature),
            (sign(&claims(), Some("rotated-away"), PEM), TokenRefused::UnknownKey("rotated-away".into())),
            ("not.a.jwt".to_string(), TokenRefused::Malformed),
        ];
        let mut codes = Vec::new();
        for (token, want) in cases {
            assert_eq!(check(&token, Some("n-1")), Err(want.clone()), "{want}");
            codes.push(want.code());
        }
        // The stable names logs and the audit detail carry.
        assert_eq!(
            codes,
            [
                "wrong_audience",
                "wrong_audience",
                "wrong_issuer",
                "expired",
                "issued_in_future",
                "wrong_nonce",
                "wrong_nonce",
                "claim",
                "bad_signature",
                "unknown_key",
                "malformed"
            ]
        );
        assert_eq!(TokenRefused::Algorithm("HS256".into()).code(), "algorithm");
        // Not before: a token good only later is not good now.
        let later = with(&[("nbf", json!(now() + 600))]);
        assert_eq!(check(&later, Some("n-1")), Err(TokenRefused::IssuedInFuture));
    }

    #[test]
    fn the_edges_of_the_checks() {
        // Issued exactly at the skew allowed: still good; a second more is not.
        check(&with(&[("iat", json!(now() + LEEWAY_SECS))]), Some("n-1")).unwrap();
        assert_eq!(check(&with(&[("iat", json!(now() + LEEWAY_SECS + 5))]), Some("n-1")), Err(TokenRefused::IssuedInFuture));
        // One audience in a list needs no azp.
        check(&with(&[("aud", json!(["jit"]))]), Some("n-1")).unwrap();
        // No kid: only an IdP with a single key may do that.
        let mut two = keys();
        let mut other = two.keys[0].clone();
        other.common.key_id = Some("test-2".into());
        two.keys.push(other);
        let no_kid = sign(&claims(), None, PEM);
        assert!(has_key(&keys(), &no_kid) && !has_key(&two, &no_kid));
        let algorithms = ["RS256".to_string()];
        let expected = Expected { issuer: "https://idp.example", client_id: "jit", algorithms: &algorithms, nonce: None, now: now() };
        assert_eq!(verify(&no_kid, &two, &expected), Err(TokenRefused::UnknownKey("none given".into())));
        // A key of another family than the token's algorithm.
        let ec: JwkSet = serde_json::from_value(json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec-1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}))
        .unwrap();
        let err = verify(&sign(&claims(), Some("ec-1"), PEM), &ec, &expected).unwrap_err();
        assert!(matches!(&err, TokenRefused::Algorithm(a) if a.starts_with("RS256 with a")), "{err:?}");
    }

    #[test]
    fn a_shared_secret_or_unsigned_token_is_refused_whatever_its_header_says() {
        // HS256 "signed" with the public key's bytes: the classic confusion.
        let forged = encode(
            &Header { kid: Some("test-1".into()), ..Header::new(Algorithm::HS256) },
            &claims(),
            &EncodingKey::from_secret(JWKS.as_bytes()),
        )
        .unwrap();
        assert_eq!(check(&forged, None), Err(TokenRefused::Algorithm("HS256".into())));
        let body = forged.split('.').nth(1).unwrap();
        let unsigned = format!("eyJhbGciOiJub25lIn0.{body}.");
        assert_eq!(check(&unsigned, None), Err(TokenRefused::Malformed));
        // An algorithm the IdP does not list is refused even if jit accepts it.
        let token = sign(&claims(), Some("test-1"), PEM);
        let listed = ["ES256".to_string()];
        let err = verify(
            &token,
            &keys(),
            &Expected { issuer: "https://idp.example", client_id: "jit", algorithms: &listed, nonce: None, now: now() },
        );
        assert_eq!(err, Err(TokenRefused::Algorithm("RS256".into())));
    }

    #[test]
    fn the_key_a_token_names_is_looked_up_so_rotation_can_refetch() {
        let token = sign(&claims(), Some("new-key"), PEM);
        assert!(!has_key(&keys(), &token), "an unknown kid asks for the IdP's keys again");
        assert!(has_key(&keys(), &sign(&claims(), Some("test-1"), PEM)));
        assert_eq!(check(&sign(&claims(), None, PEM), None).unwrap()["sub"], "u-1", "no kid, one key");
    }
}
