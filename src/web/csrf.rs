//! Cross-site request forgery protection for the pages' forms.
//!
//! Basic credentials go with every request a browser sends to this origin, whichever site made
//! it, so a POST must prove it comes from one of our pages: it carries a token (field
//! [`FIELD`]) that is HMAC-SHA-256 of the user's name under a key made at start, and its
//! `Origin` (else its `Referer`) names this server. A request with neither header is refused:
//! every browser sends `Origin` with a form POST. The token is the same for every page a user
//! loads until the server restarts; another user's token, or one from before a restart, is
//! refused (the page says to reload).

use super::WebError;
use crate::api::auth::Caller;
use crate::api::Shared;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// The form field holding the token.
pub const FIELD: &str = "_csrf";
/// Largest form body accepted.
const MAX_FORM: usize = 1 << 20;

/// The key tokens are derived from. Random per process; never shown.
pub struct CsrfKey([u8; 32]);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    pub fn random() -> Result<CsrfKey, String> {
        let mut k = [0u8; 32];
        openssl::rand::rand_bytes(&mut k).map_err(|e| e.to_string())?;
        Ok(CsrfKey(k))
    }

    /// Hex HMAC-SHA-256 under the key of a purpose tag and `text`. HMAC over a fixed digest does
    /// not fail; if OpenSSL ever did, the empty answer matches nothing.
    fn mac(&self, purpose: &[u8], text: &str) -> String {
        let mac = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
            let key = PKey::hmac(&self.0)?;
            let mut s = Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
            s.update(purpose)?;
            s.update(b"\0")?;
            s.update(text.as_bytes())?;
            s.sign_to_vec()
        };
        mac().map(hex::encode).unwrap_or_default()
    }

    /// The form token of `user`.
    pub fn token(&self, user: &str) -> String {
        self.mac(b"reclife web form", user)
    }

    /// The signature of a message a redirect carries to the next page (`?done=…&sig=…`), so
    /// that a link from elsewhere cannot put words on our pages.
    pub fn sign_notice(&self, message: &str) -> String {
        self.mac(b"reclife web notice", message)
    }

    /// True when `sig` is `message`'s signature.
    pub fn notice_ok(&self, message: &str, sig: &str) -> bool {
        let want = self.sign_notice(message);
        !want.is_empty() && want.len() == sig.len() && openssl::memcmp::eq(want.as_bytes(), sig.as_bytes())
    }

    /// True when `given` is `user`'s token (compared in constant time).
    pub fn verify(&self, user: &str, given: &str) -> bool {
        let want = self.token(user);
        !want.is_empty() && want.len() == given.len() && openssl::memcmp::eq(want.as_bytes(), given.as_bytes())
    }
}

/// Checks that a POST comes from one of this server's pages ([`crate::api::origin::same_origin`],
/// the API's own check), and refuses one that says nothing of where it comes from.
pub fn check_origin(s: &Shared, headers: &HeaderMap) -> Result<(), WebError> {
    use crate::api::origin::{same_origin, Source};
    match same_origin(s, headers) {
        Source::Here => Ok(()),
        Source::Unknown => {
            Err(WebError::forbidden("a form must come from this server's pages (no Origin or Referer header)"))
        }
        Source::Elsewhere(from) => {
            Err(WebError::forbidden(format!("a form from {from} is refused: only this server's pages may post")))
        }
    }
}

/// A posted form, checked: same origin, the caller's token. Handlers that change anything take
/// this, so none can forget the check.
#[derive(Debug)]
pub struct Form {
    pub caller: Caller,
    fields: Vec<(String, String)>,
}

impl Form {
    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value of `name` as given (untrimmed), or empty.
    pub fn raw(&self, name: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl FromRequest<Shared> for Form {
    type Rejection = WebError;

    async fn from_request(req: Request, s: &Shared) -> Result<Self, Self::Rejection> {
        let caller = req.extensions().get::<Caller>().cloned().ok_or_else(|| WebError::forbidden("not signed in"))?;
        check_origin(s, req.headers())?;
        let body = axum::body::to_bytes(req.into_body(), MAX_FORM)
            .await
            .map_err(|e| WebError::bad_request(format!("form body: {e}")))?;
        let fields: Vec<(String, String)> =
            url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let token = fields.iter().find(|(k, _)| k == FIELD).map(|(_, v)| v.as_str()).unwrap_or("");
        if !s.csrf.verify(&caller.user, token) {
            return Err(WebError::forbidden(
                "the form's token is missing or stale (the server restarted, or the form is not from this server): reload the page and try again",
            ));
        }
        Ok(Form { caller, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_per_user_and_per_key() {
        let (k1, k2) = (CsrfKey::random().unwrap(), CsrfKey::random().unwrap());
        let t = k1.token("ops");
        assert_eq!(t.len(), 64);
        assert!(k1.verify("ops", &t));
        assert!(!k1.verify("alice", &t), "another user's token");
        assert!(!k2.verify("ops", &t), "a token from before a restart");
        assert!(!k1.verify("ops", ""));
        assert!(!k1.verify("ops", &t[..63]));
        assert!(!format!("{k1:?}").contains(&t[..8]));
        let sig = k1.sign_notice("Held.");
        assert!(k1.notice_ok("Held.", &sig) && !k1.notice_ok("Call 555.", &sig) && !k2.notice_ok("Held.", &sig));
        assert_ne!(sig, k1.token("Held."), "a notice's signature is no form token");
    }
}
