//! The Acasă binary: every role as a subcommand (serve, project, migrate,
//! token, rebuild, status, bench).

use acasa::{app, bench};

/// mimalloc: the services allocate many small, short-lived buffers (HTTP/2
/// frames, protobuf, NATS messages) across threads; it measured faster than
/// the system allocator here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use acasa_runtime::{Config, Role, TokenIssuer, TokenScope};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "acasa", version, about = "Acasă: migrant return and reintegration programmes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a service's gRPC API.
    Serve {
        /// Which service.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(app::service_names()))]
        service: String,
    },
    /// Run a service's projections and background workers.
    Project {
        /// Which service.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(app::service_names()))]
        service: String,
    },
    /// List the services: name, default port, gRPC APIs, projections.
    Services,
    /// Apply the database migrations.
    Migrate,
    /// Print a development bearer token signed with the local key.
    Token {
        /// The role (admin, caseworker, viewer, partner, editor, reviewer, host, finance,
        /// service); repeatable.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// For partner tokens: the partner's id.
        #[arg(long)]
        partner: Option<String>,
        /// For host tokens: the host institution's id.
        #[arg(long)]
        host: Option<String>,
        /// The token's subject.
        #[arg(long, default_value = "dev")]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_seconds: u64,
    },
    /// Rebuild a projection's read model from the start of its stream.
    Rebuild {
        /// The projection, e.g. `demo.counters`.
        projection: String,
    },
    /// Show the checkpoint and poison commits of a projection, or of every one.
    Status {
        /// The projection, e.g. `demo.counters` (default: all).
        projection: Option<String>,
    },
    /// Measure the platform against the raw ceilings on the same servers.
    Bench(Box<bench::Args>),
    /// Write the nats-server accounts file (the service's account, one per partner).
    ///
    /// Each registered partner that is not suspended gets an account of its
    /// own whose only imports are its own feed consumer's next, info, reset
    /// and ack subjects, within limits (`ACASA_NATS_PARTNER_MAX_*`). Prints
    /// `changed` or `unchanged` first; the file is replaced (mode 0600) only
    /// when its content changed.
    NatsUsers {
        /// The file to write (included by nats.conf).
        #[arg(long)]
        out: std::path::PathBuf,
        /// The service user's password (default `$ACASA_STATE_DIR/secrets/nats-service.password`).
        #[arg(long)]
        service_password_file: Option<std::path::PathBuf>,
    },
    /// Print a partner's NATS credentials and feed coordinates as JSON.
    PartnerCredentials {
        /// The partner's id.
        partner_id: uuid::Uuid,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("acasa: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("acasa: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    match cli.command {
        Command::Token { roles, partner, host, subject, ttl_seconds } => {
            let mut parsed = Vec::new();
            for r in &roles {
                parsed.push(Role::parse(r).ok_or_else(|| anyhow::anyhow!("unknown role `{r}`"))?);
            }
            if parsed.contains(&Role::Partner) && partner.is_none() {
                anyhow::bail!("a partner token needs --partner <partner id>");
            }
            if parsed.contains(&Role::Host) && host.is_none() {
                anyhow::bail!("a host token needs --host <host id>");
            }
            anyhow::ensure!(
                ttl_seconds <= config.jwt_max_lifetime.as_secs(),
                "--ttl-seconds {ttl_seconds} is longer than the services accept (ACASA_JWT_MAX_LIFETIME_SECS, {})",
                config.jwt_max_lifetime.as_secs()
            );
            let issuer = TokenIssuer::from_config(&config)?;
            let scope = TokenScope { partner_id: partner.as_deref(), host_id: host.as_deref() };
            println!("{}", issuer.issue_scoped(&subject, &parsed, scope, Duration::from_secs(ttl_seconds))?);
            Ok(())
        }
        Command::Migrate => {
            let _telemetry =
                acasa_runtime::telemetry::init("acasa-migrate", &config).map_err(anyhow::Error::from_boxed)?;
            let pool = app::pool(&config, 2).await?;
            app::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Serve { service } => {
            let _telemetry = acasa_runtime::telemetry::init(&format!("acasa-{service}"), &config)
                .map_err(anyhow::Error::from_boxed)?;
            app::serve(&config, &service).await
        }
        Command::Project { service } => {
            let _telemetry = acasa_runtime::telemetry::init(&format!("acasa-{service}-projection"), &config)
                .map_err(anyhow::Error::from_boxed)?;
            app::project(&config, &service).await
        }
        Command::Services => {
            for s in app::SERVICES {
                let projections: Vec<&str> = s.projections().iter().map(|p| p.name).collect();
                println!("{}\t{}\t{}\t{}", s.name(), s.default_port(), s.apis().join(","), projections.join(","));
            }
            Ok(())
        }
        Command::Rebuild { projection } => {
            let _telemetry =
                acasa_runtime::telemetry::init("acasa-rebuild", &config).map_err(anyhow::Error::from_boxed)?;
            app::rebuild(&config, &projection).await
        }
        Command::Status { projection } => app::status(&config, projection.as_deref()).await,
        Command::Bench(args) => bench::run(&config, *args).await,
        Command::NatsUsers { out, service_password_file } => {
            acasa_referrals::nats_users::run_nats_users(&config, &out, service_password_file.as_deref()).await
        }
        Command::PartnerCredentials { partner_id } => {
            acasa_referrals::nats_users::print_partner_credentials(&config, partner_id)
        }
    }
}
