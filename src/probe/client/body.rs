//! A streamed request sent and its response read through one of the two HTTP clients: the
//! probe's own HTTP/1.1 client ([`super::http1`]) for a plain-`http` engine, reqwest for an
//! `https` one (or when asked, [`super::EngineClient::with_general_client`]). Either way the
//! arrival instant of each read is taken as its bytes arrive, before they are parsed.

use std::time::Instant;

use ceiling_reports::RequestRecord;

use super::http1::{self, SendError};
use super::sse::SseEvents;
use super::{EngineClient, error_chain, limits};

/// A response whose head has arrived.
pub(super) enum Body<'a> {
    Own(http1::Response<'a>),
    General(reqwest::Response),
}

impl EngineClient {
    /// Sends the request, once more if the connection closed before any byte of a response
    /// (a kept connection the server had closed; nothing was received, so sending again is
    /// safe; the request's clock restarts at the second send). The error is a connect error.
    pub(super) async fn open(
        &self,
        body: &serde_json::Value,
        rec: &mut RequestRecord,
        t0: Instant,
    ) -> Result<Body<'_>, String> {
        match &self.own {
            Some(own) => {
                let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
                match own.send(&bytes, false).await {
                    Ok(r) => Ok(Body::Own(r)),
                    Err(SendError::ClosedBeforeResponse(_)) => {
                        rec.sent_t_s = t0.elapsed().as_secs_f64();
                        match own.send(&bytes, true).await {
                            Ok(r) => Ok(Body::Own(r)),
                            Err(SendError::ClosedBeforeResponse(e) | SendError::Other(e)) => Err(e),
                        }
                    }
                    Err(SendError::Other(e)) => Err(e),
                }
            }
            None => match self.send_general(body).await {
                Ok(r) => Ok(Body::General(r)),
                Err(e) if is_closed_before_response(&e) => {
                    rec.sent_t_s = t0.elapsed().as_secs_f64();
                    match self.send_general(body).await {
                        Ok(r) => Ok(Body::General(r)),
                        Err(e) => Err(error_chain(&e)),
                    }
                }
                Err(e) => Err(error_chain(&e)),
            },
        }
    }

    async fn send_general(&self, body: &serde_json::Value) -> reqwest::Result<reqwest::Response> {
        let mut req = self.http.post(&self.url).json(body);
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        req.send().await
    }
}

/// hyper's "connection closed before message completed": the server closed the connection
/// before any response byte. reqwest exposes no kind for it, so its message is matched.
fn is_closed_before_response(e: &reqwest::Error) -> bool {
    !e.is_timeout() && error_chain(e).contains("connection closed before message completed")
}

impl Body<'_> {
    /// When the response's head arrived (the own client: by the kernel's stamp).
    pub(super) fn head_arrived(&self) -> Option<Instant> {
        match self {
            Body::Own(r) => Some(r.arrived),
            Body::General(_) => None,
        }
    }

    pub(super) fn status(&self) -> u16 {
        match self {
            Body::Own(r) => r.head.status,
            Body::General(r) => r.status().as_u16(),
        }
    }

    /// Waits for the next bytes and hands them to `sse`: their arrival instant, taken before
    /// anything is parsed, or `None` at the body's end.
    pub(super) async fn next(
        &mut self,
        sse: &mut SseEvents,
        t0: Instant,
    ) -> Result<Option<f64>, String> {
        match self {
            Body::Own(r) => {
                if !r.fill().await? {
                    return Ok(None);
                }
                // When the bytes arrived by the kernel's stamp, not when this task got to them.
                let at = r.arrived.saturating_duration_since(t0).as_secs_f64();
                r.decode(|b| sse.push(b))?;
                Ok(Some(at))
            }
            Body::General(r) => match r.chunk().await {
                Ok(Some(b)) => {
                    let at = t0.elapsed().as_secs_f64();
                    sse.push(&b);
                    Ok(Some(at))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(error_chain(&e)),
            },
        }
    }

    /// The request is complete (`[DONE]`): the own client reads the body's end, to keep the
    /// connection.
    pub(super) async fn finish(self) {
        if let Body::Own(r) = self {
            r.finish().await;
        }
    }

    /// The error body of a non-2xx answer, at most [`limits::MAX_ERROR_BODY_BYTES`] of it.
    pub(super) async fn error_text(self) -> String {
        match self {
            Body::Own(r) => r.capped_text(limits::MAX_ERROR_BODY_BYTES).await,
            Body::General(r) => limits::capped_text(r, limits::MAX_ERROR_BODY_BYTES).await,
        }
    }
}

/// `404 Not Found`, as reqwest writes a status.
pub(super) fn status_text(code: u16) -> String {
    match reqwest::StatusCode::from_u16(code) {
        Ok(s) => s.to_string(),
        Err(_) => code.to_string(),
    }
}
