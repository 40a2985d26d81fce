//! repokit's HTTP server and command line: a thin adapter that parses a
//! request, calls one repo-core or repo-sync operation and maps the result.
//! It holds no repository state of its own; everything is in the store, so
//! the CLI and a running server see each other's changes.
#![forbid(unsafe_code)]

pub mod error;
pub mod hosting;

use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use repo_core::Repokit;

/// Serves `kit` on the given listener until the process is stopped.
pub async fn serve(kit: Arc<Repokit>, listener: std::net::TcpListener) -> std::io::Result<()> {
    let data = web::Data::new(kit);
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::Logger::new("%a \"%r\" %s %b %Dms"))
            .configure(hosting::configure)
    })
    .listen(listener)?
    .run()
    .await
}
