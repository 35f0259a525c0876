//! `switchboard put`, `get` and `list`: the files services from the
//! command line, with a progress bar and a checked SHA-256.

use anyhow::{Context, Result};

use super::{client_tls, load_key};
use switchboard::cli::{ClientArgs, GetArgs, KeyArgs, ListArgs, PutArgs, ServeArgs};
use switchboard::client::{ClassicClient, FilesClient};
use switchboard::terminal::{Progress, human_bytes};

pub(crate) async fn put(args: PutArgs, top: &ServeArgs) -> Result<()> {
    anyhow::ensure!(
        args.name.is_none() || args.files.len() == 1,
        "--name works with one FILE only"
    );
    let mut files = None;
    let tls = client_tls(&args.client.tls)?;
    if !args.classic {
        let key = load_key(&args.key, top)?;
        files = Some(
            FilesClient::connect_tls(&args.client.addr, &key, args.client.timeout, tls.as_ref())
                .await?,
        );
    }
    for path in &args.files {
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        let meta = file.metadata().await?;
        anyhow::ensure!(meta.is_file(), "{} is not a file", path.display());
        let size = meta.len();
        let name = match &args.name {
            Some(n) => n.clone(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .with_context(|| format!("{} has no file name", path.display()))?,
        };
        let mut bar = Progress::new(&name, size);
        let started = std::time::Instant::now();
        let body = tokio::io::BufReader::with_capacity(256 * 1024, file);
        let report = match &mut files {
            Some(client) if args.resume => {
                let record =
                    super::files_resume::Record::new(&args.client.addr, path, &meta, &name);
                let stored = client
                    .put_resumable(
                        &name,
                        size,
                        body,
                        record.load(),
                        |id, held| {
                            record.save(id);
                            if held > 0 {
                                eprintln!("resuming {name} at {held} of {size} bytes");
                            }
                        },
                        |n| bar.update(n),
                    )
                    .await;
                bar.finish();
                let stored = stored?;
                record.forget();
                format!("stored {}  sha256 {}", stored.name, stored.sha256)
            }
            Some(client) => {
                let stored = client.put(&name, size, body, |n| bar.update(n)).await;
                bar.finish();
                let stored = stored?;
                let renamed = if stored.name == name {
                    String::new()
                } else {
                    format!(" (as {}: {name} was taken)", stored.name)
                };
                format!("stored {}{renamed}  sha256 {}", stored.name, stored.sha256)
            }
            None => {
                let client = ClassicClient::connect_tls(
                    &args.client.addr,
                    args.client.timeout,
                    tls.as_ref(),
                )
                .await?;
                let sha = client.put(&name, size, body, |n| bar.update(n)).await;
                bar.finish();
                format!(
                    "sent {name} (stored as new_{name} or a free variant)  sha256 {}",
                    sha?
                )
            }
        };
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        println!(
            "{report}  {}  {}/s",
            human_bytes(size),
            human_bytes((size as f64 / secs) as u64)
        );
    }
    Ok(())
}

/// A files client for `get` and `list`: the key found as the server finds
/// it, over TLS when asked.
async fn connect(client: &ClientArgs, key: &KeyArgs, top: &ServeArgs) -> Result<FilesClient> {
    let key = load_key(key, top)?;
    let tls = client_tls(&client.tls)?;
    Ok(FilesClient::connect_tls(&client.addr, &key, client.timeout, tls.as_ref()).await?)
}

pub(crate) async fn get(args: GetArgs, top: &ServeArgs) -> Result<()> {
    let mut client = connect(&args.client, &args.key, top).await?;
    if args.output.as_deref() == Some(std::path::Path::new("-")) {
        let stdout = tokio::io::stdout();
        client.get(&args.name, stdout, |_| {}, |_| {}).await?;
        return Ok(());
    }
    let dest = match args.output {
        Some(p) => p,
        None => std::path::PathBuf::from(switchboard::store::safe_name(args.name.as_bytes())?),
    };
    anyhow::ensure!(
        args.force || !dest.exists(),
        "{} exists; pass --force to replace it or -o PATH",
        dest.display()
    );
    // Written beside the destination and renamed: never a partial file under its name.
    let part = dest.with_file_name(format!(
        ".{}.part-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let file = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("cannot create {}", part.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let bar = std::cell::RefCell::new(None::<Progress>);
    let started = std::time::Instant::now();
    let got = client
        .get(
            &args.name,
            &mut out,
            |size| *bar.borrow_mut() = Some(Progress::new(&args.name, size)),
            |n| {
                if let Some(b) = bar.borrow_mut().as_mut() {
                    b.update(n);
                }
            },
        )
        .await;
    if let Some(b) = bar.borrow_mut().as_mut() {
        b.finish();
    }
    let got = match got {
        Ok(g) => g,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e.into());
        }
    };
    out.into_inner().sync_all().await?;
    std::fs::rename(&part, &dest)?;
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    println!(
        "saved {}  sha256 {} (checked)  {}  {}/s",
        dest.display(),
        got.sha256,
        human_bytes(got.size),
        human_bytes((got.size as f64 / secs) as u64)
    );
    Ok(())
}

pub(crate) async fn list(args: ListArgs, top: &ServeArgs) -> Result<()> {
    let mut client = connect(&args.client, &args.key, top).await?;
    let (files, truncated) = client.list().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&files)?);
        return Ok(());
    }
    if files.is_empty() {
        println!("no files stored yet");
        return Ok(());
    }
    println!(
        "{:>10}  {:<20}  {:<64}  NAME",
        "SIZE", "MODIFIED", "SHA-256"
    );
    for f in &files {
        println!(
            "{:>10}  {:<20}  {:<64}  {}",
            human_bytes(f.size),
            f.modified,
            f.sha256,
            f.name
        );
    }
    if truncated {
        println!("(the server sent only part of the list)");
    }
    Ok(())
}
