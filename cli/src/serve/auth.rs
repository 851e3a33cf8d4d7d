//! Who may use the dashboard: the listening address and its token, and the
//! guard every request passes (token off loopback, loopback Host names).

use super::*;

/// Where to listen and whether a token is required.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The address given to `--serve`.
    pub addr: SocketAddr,
    /// Required on every request when set.
    pub token: Option<String>,
    /// The token was generated (and must be shown to the user).
    pub token_generated: bool,
}

impl ServeConfig {
    /// Reads `--serve` (`PORT`, `:PORT`, `ADDR:PORT` or `[V6]:PORT`) and `--serve-token`.
    /// A non-loopback address always gets a token: the given one or a new one.
    pub fn from_args(serve: &str, token: Option<String>) -> anyhow::Result<ServeConfig> {
        let port_only = serve.strip_prefix(':').unwrap_or(serve);
        let addr = match port_only.parse::<u16>() {
            Ok(port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            Err(_) => serve.parse::<SocketAddr>().map_err(|_| {
                anyhow::anyhow!(
                    "--serve {serve:?} is not PORT or ADDR:PORT; use, for example, --serve 9100 (loopback) or --serve 198.18.0.2:9100"
                )
            })?,
        };
        if let Some(t) = &token {
            let url_safe = t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if t.len() < 16 || !url_safe {
                anyhow::bail!(
                    "--serve-token must be at least 16 characters of A-Z a-z 0-9 - . _ ~; omit it to have one generated"
                );
            }
        }
        let (token, token_generated) = match token {
            Some(t) => (Some(t), false),
            None if addr.ip().is_loopback() => (None, false),
            None => (Some(generate_token()?), true),
        };
        Ok(ServeConfig {
            addr,
            token,
            token_generated,
        })
    }

    /// The URL to open, shown on stderr: with the token only when xsktap
    /// generated it (a token the user gave, by `--serve-token` or
    /// `XSKTAP_SERVE_TOKEN`, is theirs already and never printed).
    pub fn url(&self, bound: SocketAddr) -> String {
        match (&self.token, self.token_generated) {
            (Some(t), true) => format!("http://{bound}/?token={t}"),
            (Some(_), false) => format!("http://{bound}/ (with your token: ?token=TOKEN)"),
            (None, _) => format!("http://{bound}/"),
        }
    }
}

/// 128 random bits as 32 hex digits, from the kernel's generator.
fn generate_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?,
        &mut bytes,
    )
    .context("reading /dev/urandom for a --serve token")?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// Opens the listening socket, before the capture starts, so that a busy
/// port fails without anything attached.
pub fn bind(cfg: &ServeConfig) -> anyhow::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(cfg.addr).map_err(|e| {
        anyhow::anyhow!(
            "--serve {}: cannot listen there ({e}); choose a free port or an address of this host",
            cfg.addr
        )
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The token check (`Authorization: Bearer T` or `?token=T`) and, when no
/// token is required, a loopback Host header.
pub(super) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // A page of another site open in a browser on this host may reach a
    // loopback server (a cross-site WebSocket is not stopped by the
    // browser): a request whose Origin is present and not this server's own
    // is refused, whatever its token.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    if let Some(origin) = origin {
        if !host.is_some_and(|h| same_origin(origin, h)) {
            state.stats.forbidden.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::FORBIDDEN,
                "403: cross-site request refused (its Origin is not this dashboard's)\n",
            )
                .into_response();
        }
    }
    match &state.token {
        Some(token) => {
            // The scheme is case-insensitive (RFC 7235): "bearer T" is "Bearer T".
            let bearer = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            let query = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")));
            let ok = [bearer, query]
                .into_iter()
                .flatten()
                .any(|given| same(given.as_bytes(), token.as_bytes()));
            if !ok {
                state.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "401: this dashboard needs its token: Authorization: Bearer TOKEN or ?token=TOKEN\n",
                )
                    .into_response();
            }
        }
        None => {
            if let Some(host) = host {
                if !loopback_host(host) {
                    state.stats.forbidden.fetch_add(1, Ordering::Relaxed);
                    return (
                        StatusCode::FORBIDDEN,
                        "403: Host is not a loopback name; bind a non-loopback address (with a token) to serve other names\n",
                    )
                        .into_response();
                }
            }
        }
    }
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Whether a Host header names this machine's loopback (any port, so that
/// SSH tunnels work): a page of another site that rebinds its own name to
/// 127.0.0.1 still sends that name, and is refused.
pub(super) fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `origin` (`http://HOST[:PORT]`) is the origin of a page this
/// server served under the Host header `host`.
pub(super) fn same_origin(origin: &str, host: &str) -> bool {
    origin
        .strip_prefix("http://")
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// Compares without stopping at the first difference.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
