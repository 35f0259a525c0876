//! `GET /tutorials`: each program of the five socket tutorials, the
//! instances here that play its counterpart, a one-line command that runs
//! the tutorial's client against one of them (from a checkout, where
//! `tests/seeds/` holds the programs), and each instance's state now.
//!
//! What this does not do: run anything (the page only shows commands), or
//! follow state changes after it was drawn (the Services page does).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::AppState;
use super::error::{PageError, WebError};
use super::pages::Chrome;
use super::session::Viewer;
use crate::config::ServiceConfig;
use crate::kind::ServiceKind;
use crate::service::{echo, exec, login};

/// Which instances can play a program's counterpart.
type Fits = fn(&ServiceConfig) -> bool;

/// One tutorial program: what it is, its client's file, who plays it.
struct Program {
    seed: &'static str,
    section: &'static str,
    client: &'static str,
    kind: ServiceKind,
    fits: Fits,
    /// The settings an instance needs beyond its kind.
    needs: &'static str,
    /// The client asks for the address on its standard input.
    asks_address: bool,
}

fn any(_: &ServiceConfig) -> bool {
    true
}

fn exec_framing(c: &ServiceConfig, f: exec::Framing) -> bool {
    c.settings
        .get::<exec::Settings>()
        .is_some_and(|s| s.framing == f)
}

const PROGRAMS: &[Program] = &[
    Program {
        seed: "000",
        section: "login (socket client端实例代码)",
        client: "000_login_client.py",
        kind: ServiceKind::Login,
        fits: |c| {
            c.settings
                .get::<login::Settings>()
                .is_some_and(|s| s.prompts == login::TUTORIAL)
        },
        needs: "prompts = \"tutorial\"",
        asks_address: false,
    },
    Program {
        seed: "000",
        section: "UDP chat (UDP的传输)",
        client: "000_udp_chat_client.py",
        kind: ServiceKind::UdpChat,
        fits: any,
        needs: "",
        asks_address: true,
    },
    Program {
        seed: "001",
        section: "first example",
        client: "001_first_client.py",
        kind: ServiceKind::Echo,
        fits: any,
        needs: "",
        asks_address: false,
    },
    Program {
        seed: "001",
        section: "loop (客户端服务端循环发送接收消息)",
        client: "001_loop_client.py",
        kind: ServiceKind::Echo,
        fits: any,
        needs: "",
        asks_address: false,
    },
    Program {
        seed: "001",
        section: "UDP (基于udp 的套接字)",
        client: "001_udp_client.py",
        kind: ServiceKind::UdpEcho,
        fits: any,
        needs: "",
        asks_address: false,
    },
    Program {
        seed: "001",
        section: "time server (ntp)",
        client: "001_time_client.py",
        kind: ServiceKind::Time,
        fits: any,
        needs: "",
        asks_address: false,
    },
    Program {
        seed: "001",
        section: "remote command (基于tcp实现远程命令)",
        client: "001_cmd_raw_client.py",
        kind: ServiceKind::Exec,
        fits: |c| exec_framing(c, exec::Framing::Raw),
        needs: "framing = \"raw\"",
        asks_address: false,
    },
    Program {
        seed: "001",
        section: "解决粘包 方式一",
        client: "001_cmd_ready_client.py",
        kind: ServiceKind::Exec,
        fits: |c| exec_framing(c, exec::Framing::LengthReady),
        needs: "framing = \"length-ready\"",
        asks_address: false,
    },
    Program {
        seed: "001",
        section: "解决粘包 方式二",
        client: "001_cmd_struct_client.py",
        kind: ServiceKind::Exec,
        fits: |c| exec_framing(c, exec::Framing::Struct),
        needs: "framing = \"struct\"",
        asks_address: false,
    },
    Program {
        seed: "001",
        section: "socketserver TCP",
        client: "001_socketserver_tcp_client.py",
        kind: ServiceKind::Echo,
        fits: any,
        needs: "",
        asks_address: false,
    },
    Program {
        seed: "001",
        section: "socketserver UDP",
        client: "001_socketserver_udp_client.py",
        kind: ServiceKind::UdpEcho,
        fits: any,
        needs: "",
        asks_address: false,
    },
    Program {
        seed: "001",
        section: "认证客户端合法性",
        client: "001_hmac_client.py",
        kind: ServiceKind::Echo,
        fits: |c| {
            c.settings
                .get::<echo::Settings>()
                .is_some_and(|s| s.auth.mode == crate::service::tutorial_auth::AuthMode::HmacMd5)
        },
        needs: "auth = \"hmac-md5\", auth_key = \"ni hao ma\"",
        asks_address: false,
    },
    Program {
        seed: "002",
        section: "UDP 发数据",
        client: "002_udp_send.py",
        kind: ServiceKind::UdpEcho,
        fits: any,
        needs: "",
        asks_address: false,
    },
    Program {
        seed: "002",
        section: "TCP客户端",
        client: "002_tcp_client.py",
        kind: ServiceKind::Echo,
        fits: any,
        needs: "",
        asks_address: true,
    },
    Program {
        seed: "003",
        section: "upload (客户端代码)",
        client: "003_upload_client.py",
        kind: ServiceKind::FilesClassic,
        fits: any,
        needs: "",
        asks_address: false,
    },
    Program {
        seed: "004",
        section: "chat (written from its description)",
        client: "004_chat_client.py",
        kind: ServiceKind::Chat,
        fits: any,
        needs: "",
        asks_address: false,
    },
];

/// One instance that plays a program's part.
pub struct Player {
    pub name: String,
    pub phase: &'static str,
    pub command: String,
}

/// One row of the page.
pub struct Row {
    pub seed: &'static str,
    pub section: &'static str,
    pub client: &'static str,
    pub kind: &'static str,
    pub needs: &'static str,
    pub players: Vec<Player>,
}

#[derive(Template, WebTemplate)]
#[template(path = "tutorials.html")]
pub struct TutorialsPage {
    chrome: Chrome,
    rows: Vec<Row>,
}

/// The command that runs `program`'s client against `port`.
fn command(program: &Program, port: Option<u16>) -> String {
    let port = port.map_or_else(|| "PORT".to_owned(), |p| p.to_string());
    if program.asks_address {
        return format!(
            "PYTHONPATH=tests/seeds python3 tests/seeds/{}   # then type 127.0.0.1 and {port}",
            program.client
        );
    }
    format!(
        "sed -E \"s/('127\\.0\\.0\\.1', ?)[0-9]+/\\1{port}/\" tests/seeds/{} | PYTHONPATH=tests/seeds python3 -",
        program.client
    )
}

/// `GET /tutorials`.
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn page(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<TutorialsPage, PageError> {
    let Viewer(session) = viewer?;
    let supervisor = state.supervisor();
    let statuses = supervisor.statuses();
    let rows = PROGRAMS
        .iter()
        .map(|p| {
            let players = statuses
                .iter()
                .filter(|s| s.kind == p.kind)
                .filter(|s| {
                    supervisor
                        .config_of(s.name.name())
                        .is_some_and(|c| (p.fits)(&c))
                })
                .map(|s| {
                    let port = s
                        .local_addr
                        .as_deref()
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse().ok());
                    Player {
                        name: s.name.name().to_owned(),
                        phase: s.phase,
                        command: command(p, port),
                    }
                })
                .collect();
            Row {
                seed: p.seed,
                section: p.section,
                client: p.client,
                kind: p.kind.name(),
                needs: p.needs,
                players,
            }
        })
        .collect();
    Ok(TutorialsPage {
        chrome: Chrome::new(session, "tutorials"),
        rows,
    })
}
