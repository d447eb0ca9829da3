//! A browser stand-in for the dashboard over plain HTTP: keeps the cookies it is given (as a
//! browser does for one site), never follows redirects (so a test sees each 303), and reads
//! the hidden form fields (CSRF token, idempotency key) of the page it was last shown.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(str::to_owned)
            .collect()
    }

    /// The value of the first `<input … name="NAME" value="…">` in the page.
    pub fn field(&self, name: &str) -> String {
        self.field_in(name, "")
    }

    /// [`Page::field`] within the form whose `action` ends in `action_suffix`.
    pub fn field_in(&self, name: &str, action_suffix: &str) -> String {
        let start = if action_suffix.is_empty() {
            0
        } else {
            let needle = format!("{action_suffix}\"");
            self.body
                .find(&needle)
                .unwrap_or_else(|| panic!("no form ending {action_suffix} in {}", self.body))
        };
        let rest = &self.body[start..];
        let needle = format!("name=\"{name}\" value=\"");
        let at = rest
            .find(&needle)
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body))
            + needle.len();
        let end = rest[at..].find('"').expect("the value ends");
        rest[at..at + end].to_owned()
    }

    /// The `href` of the link with this id (`&amp;` read back as `&`).
    pub fn field_href(&self, id: &str) -> String {
        let needle = "href=\"";
        let at = self
            .body
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id} in {}", self.body));
        let start = self.body[..at].rfind(&needle).expect("an href") + needle.len();
        let end = self.body[start..].find('"').expect("the href ends");
        self.body[start..start + end]
            .replace("&#38;", "&")
            .replace("&amp;", "&")
    }

    pub fn expect(&self, status: u16) -> &Page {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }

    pub fn contains(&self, text: &str) -> &Page {
        assert!(self.body.contains(text), "no {text:?} in {}", self.body);
        self
    }

    pub fn lacks(&self, text: &str) -> &Page {
        assert!(!self.body.contains(text), "{text:?} found in {}", self.body);
        self
    }
}

pub struct Dashboard {
    http: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
}

impl Dashboard {
    pub fn new(base: &str) -> Dashboard {
        Dashboard {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    fn keep(&mut self, page: &Page) {
        for cookie in page.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || cookie.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("a body");
        let page = Page {
            status,
            headers,
            body,
        };
        self.keep(&page);
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET sent");
        self.read(response).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST sent");
        self.read(response).await
    }

    /// Signs in with `key`; answers the 303.
    pub async fn sign_in(&mut self, key: &str) -> Page {
        let form = self.get("/dashboard/sign-in").await;
        form.expect(200);
        let csrf = form.field("csrf");
        self.post("/dashboard/sign-in", &[("csrf", &csrf), ("key", key)])
            .await
    }

    /// Signed in with `key`, or the test fails.
    pub async fn signed_in(base: &str, key: &str) -> Dashboard {
        let mut dashboard = Dashboard::new(base);
        let answer = dashboard.sign_in(key).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        assert_eq!(answer.location(), "/dashboard");
        dashboard
    }

    /// Submits the form on `page` whose action is `action` (a path) with its CSRF field and
    /// idempotency key plus `fields`.
    pub async fn submit(&mut self, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = page.field_in("csrf", action);
        let key = page.field_in("idempotency_key", action);
        let mut form = vec![("csrf", csrf.as_str()), ("idempotency_key", key.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }
}
