//! A blocking client of a node's HTTP API ([`crate::api`]).

use std::io::Read as _;
use std::time::Duration;

use serde_json::Value;

use crate::DaemonError;

/// Largest answer read (a blob is at most the node's blob limit; models here are small).
const MAX_BODY: u64 = 512 * 1024 * 1024;

/// A node's API at `base` (`http://HOST:PORT`).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Client {
    /// A client of the API at `base`; a bare `HOST:PORT` gets `http://`.
    pub fn new(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        let base = if base.starts_with("http://") || base.starts_with("https://") {
            base.to_string()
        } else {
            format!("http://{base}")
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build();
        Self {
            base,
            agent,
            token: None,
        }
    }

    /// Sends `Authorization: Bearer TOKEN` with requests that change something.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The API's base address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn fail(&self, path: &str, error: ureq::Error) -> DaemonError {
        match error {
            ureq::Error::Status(code, response) => {
                let body = response.into_string().unwrap_or_default();
                let reason = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or(body);
                DaemonError::Api(format!("{}{path}: {code} {}", self.base, reason.trim()))
            }
            ureq::Error::Transport(transport) => {
                DaemonError::Api(format!("{}{path}: {transport}", self.base))
            }
        }
    }

    /// `GET path` as JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, DaemonError> {
        let response = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .map_err(|error| self.fail(path, error))?;
        response
            .into_json()
            .map_err(|error| DaemonError::Api(format!("{}{path}: {error}", self.base)))
    }

    /// `GET path` as JSON, `None` when the node answers 404 (not there yet, or not at all).
    pub fn get_json_if_found(&self, path: &str) -> Result<Option<Value>, DaemonError> {
        match self.agent.get(&format!("{}{path}", self.base)).call() {
            Ok(response) => response
                .into_json()
                .map(Some)
                .map_err(|error| DaemonError::Api(format!("{}{path}: {error}", self.base))),
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(error) => Err(self.fail(path, error)),
        }
    }

    /// `GET path` as text.
    pub fn get_text(&self, path: &str) -> Result<String, DaemonError> {
        self.agent
            .get(&format!("{}{path}", self.base))
            .call()
            .map_err(|error| self.fail(path, error))?
            .into_string()
            .map_err(|error| DaemonError::Api(format!("{}{path}: {error}", self.base)))
    }

    /// `GET path` as bytes.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, DaemonError> {
        let response = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .map_err(|error| self.fail(path, error))?;
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(MAX_BODY)
            .read_to_end(&mut bytes)
            .map_err(|error| DaemonError::Api(format!("{}{path}: {error}", self.base)))?;
        Ok(bytes)
    }

    /// `POST path` with a text body; the answer as JSON.
    pub fn post_text(&self, path: &str, body: &str) -> Result<Value, DaemonError> {
        let mut request = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("content-type", "text/plain");
        if let Some(token) = &self.token {
            request = request.set("authorization", &format!("Bearer {token}"));
        }
        let response = request
            .send_string(body)
            .map_err(|error| self.fail(path, error))?;
        response
            .into_json()
            .map_err(|error| DaemonError::Api(format!("{}{path}: {error}", self.base)))
    }
}

/// Rounds of a task that have closed, read from its `GET /tasks/{id}` JSON: the running round's
/// number, all of them once it finished, none while open or after a cancel.
pub fn closed_rounds(task: &Value) -> u64 {
    match &task["status"] {
        Value::Object(map) if map.contains_key("Running") => {
            map["Running"]["round"].as_u64().unwrap_or(0)
        }
        Value::String(s) if s == "Open" || s == "Cancelled" => 0,
        _ => task["spec"]["rounds"].as_u64().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn closed_rounds_follow_the_task_status() {
        let task = |status: Value| json!({ "status": status, "spec": { "rounds": 5 } });
        assert_eq!(closed_rounds(&task(json!("Open"))), 0);
        assert_eq!(
            closed_rounds(&task(json!({ "Running": { "round": 2 } }))),
            2
        );
        assert_eq!(closed_rounds(&task(json!("Finished"))), 5);
        assert_eq!(closed_rounds(&task(json!("Settled"))), 5);
        assert_eq!(closed_rounds(&task(json!("Cancelled"))), 0);
    }
}
