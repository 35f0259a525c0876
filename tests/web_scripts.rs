//! The dashboard's script as native ES modules: every page loads exactly
//! one `<script type="module">` of its own, no inline script (the CSP's
//! `script-src 'self'` stays as it is), and that module and everything it
//! imports are served as `text/javascript` from the binary.
//!
//! Not here: whether the pages work in a browser (tests/browser.rs and the
//! other Chromium tests drive them).

mod common;

use std::collections::{BTreeSet, VecDeque};

use axum::http::StatusCode;

use common::web::{Signed, Web, get};

/// Every signed-in page, and the sign-in page.
const PAGES: [&str; 13] = [
    "/",
    "/connections",
    "/traffic",
    "/send",
    "/files",
    "/console",
    "/chat",
    "/tutorials",
    "/services",
    "/tokens",
    "/audit",
    "/inspect/1",
    "/login",
];

/// The `src` of every `<script ...>` tag in `html`, with whether it is a
/// module; panics on a script without `src` (an inline script).
fn scripts(html: &str) -> Vec<(String, bool)> {
    html.split("<script")
        .skip(1)
        .map(|tag| {
            let tag = &tag[..tag.find('>').expect("a script tag closes")];
            let src = tag
                .split("src=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_else(|| panic!("an inline script: <script{tag}>"));
            (src.to_owned(), tag.contains("type=\"module\""))
        })
        .collect()
}

/// The modules `js` (at `path`) imports statically, resolved against it.
fn imports(path: &str, js: &str) -> Vec<String> {
    let dir = &path[..=path.rfind('/').expect("an absolute path")];
    js.lines()
        .filter(|l| l.starts_with("import "))
        .filter_map(|l| l.split(" from '").nth(1))
        .filter_map(|s| s.split('\'').next())
        .map(|rel| {
            let mut parts: Vec<&str> = dir.trim_end_matches('/').split('/').collect();
            for seg in rel.split('/') {
                match seg {
                    "." => {}
                    ".." => {
                        parts.pop();
                    }
                    s => parts.push(s),
                }
            }
            parts.join("/")
        })
        .collect()
}

async fn fetch(w: &Web, admin: &Signed, path: &str) -> common::web::Reply {
    w.send(admin.get(path)).await
}

#[tokio::test]
async fn every_page_loads_its_own_module_and_every_import_is_served_as_javascript() {
    let w = Web::start().await;
    let admin = w.admin().await;
    let mut page_modules = BTreeSet::new();
    let mut queue = VecDeque::new();
    for page in PAGES {
        let r = if page == "/login" {
            w.send(get(page)).await
        } else {
            fetch(&w, &admin, page).await
        };
        assert_eq!(r.status, StatusCode::OK, "{page}");
        assert!(
            r.header("content-security-policy")
                .contains("script-src 'self';"),
            "{page}: {}",
            r.header("content-security-policy")
        );
        let modules: Vec<String> = scripts(&r.body)
            .into_iter()
            .filter_map(|(src, module)| module.then_some(src))
            .collect();
        assert_eq!(modules.len(), 1, "{page}: {modules:?}");
        assert!(
            modules[0].starts_with("/static/pages/"),
            "{page}: {modules:?}"
        );
        page_modules.insert(modules[0].clone());
        queue.push_back(modules[0].clone());
    }
    // One module per page (the sign-in page's included).
    assert_eq!(page_modules.len(), PAGES.len(), "{page_modules:?}");
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = fetch(&w, &admin, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(
            r.header("content-type"),
            "text/javascript; charset=utf-8",
            "{path}"
        );
        queue.extend(imports(&path, &r.body));
    }
    // The shared module is reached from the pages.
    assert!(seen.contains("/static/app.js"), "{seen:?}");
    assert!(seen.contains("/static/bscs.js"), "{seen:?}");
}

#[tokio::test]
async fn signed_in_the_sign_in_page_goes_to_next_only_on_this_site() {
    let w = Web::start().await;
    let admin = w.admin().await;
    for (next, to) in [
        ("%2Ftraffic%3Fx%3D1", "/traffic?x=1"),
        ("%2F%2Fevil.example%2F", "/"),
        ("https%3A%2F%2Fevil.example%2F", "/"),
        ("%2F%5Cevil.example", "/"),
        ("%2Flogin", "/"),
    ] {
        let r = w.send(admin.get(&format!("/login?next={next}"))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(r.header("location"), to, "{next}");
    }
    // Without a session, any `next` gets the form.
    let r = w.send(get("/login?next=%2F%2Fevil.example")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains(r#"id="sign-in""#));
}
