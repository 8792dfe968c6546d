//! `epoch-store login` and `epoch-store logout`.

use epoch_store::transport::registry::{Client, Reference, auth_file};

use crate::remote::ConnectArgs;
use crate::{Ctx, EXIT_OK};

/// Log in to a registry: check the credentials, then keep them in docker's
/// config.json (`$DOCKER_CONFIG/config.json`, else ~/.docker/config.json;
/// mode 0600), where push and pull (and docker, skopeo, crane) find them.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    echo \"$PASSWORD\" | epoch-store login registry.internal:5000 --username ci --password-stdin\n  \
    epoch-store logout registry.internal:5000\n\n\
Exit codes: 0 logged in, 2 error (refused: nothing is written).")]
pub struct LoginArgs {
    /// The registry: HOST[:PORT].
    #[arg(value_name = "HOST")]
    host: String,
    #[command(flatten)]
    remote: ConnectArgs,
}

/// Log out of a registry: remove its credentials from docker's config.json.
#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// The registry: HOST[:PORT].
    #[arg(value_name = "HOST")]
    host: String,
}

fn reference(host: &str) -> anyhow::Result<Reference> {
    format!("{host}/v2-ping")
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))
}

pub fn login(ctx: &Ctx, a: LoginArgs) -> anyhow::Result<u8> {
    if a.remote.username.is_none() {
        anyhow::bail!(
            "give the user with --username and the password on stdin with --password-stdin"
        );
    }
    let options = a.remote.options(&a.host)?;
    let client = Client::new(&reference(&a.host)?, &options)?;
    client.ping()?;
    let credentials = options.credentials.expect("--username was given");
    let path = auth_file::login(&a.host, &credentials)?;
    if ctx.json {
        crate::output::json(&serde_json::json!({ "host": a.host, "config": path }))?;
    } else {
        ctx.say(format_args!(
            "Logged in to {}; credentials kept in {}",
            a.host,
            path.display()
        ))?;
    }
    Ok(EXIT_OK)
}

pub fn logout(ctx: &Ctx, a: LogoutArgs) -> anyhow::Result<u8> {
    reference(&a.host)?;
    let found = auth_file::logout(&a.host)?;
    if ctx.json {
        crate::output::json(&serde_json::json!({ "host": a.host, "removed": found }))?;
    } else if found {
        ctx.say(format_args!("Logged out of {}", a.host))?;
    } else {
        ctx.say(format_args!(
            "Not logged in to {} (docker's config.json has nothing for it)",
            a.host
        ))?;
    }
    Ok(EXIT_OK)
}
