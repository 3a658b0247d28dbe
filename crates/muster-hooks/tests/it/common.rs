//! The alert router served over a real application: SQLite in a temporary directory, the
//! system clock, messages to an outbox file, one response plan ("alerts") for integrations.
// Each test binary uses its part.
#![allow(dead_code)]

use muster_app::App;
use muster_app::messaging::Messaging;
use muster_core::alert::Format;
use muster_core::incident::{IncidentTemplate, ResponsePlan};
use muster_core::{AccountId, Clock, Region, SystemClock};
use muster_hooks::alerts::{AlertState, router};
use muster_hooks::sns_certs::SnsCerts;
use muster_notify::config::{OutboxConfig, ProviderConfig};
use muster_notify::providers::Notifier;
use muster_store::{After, IncidentFilter, Store};
use std::sync::Arc;

pub const ACCOUNT: &str = "123456789012";

pub struct Served {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub app: Arc<App>,
    /// A plain HTTP client (no proxy).
    pub http: reqwest::Client,
    plan_arn: String,
    _dir: tempfile::TempDir,
}

/// Serves `router` over a fresh application, with `sns` as its SNS client.
pub async fn serve(sns: SnsCerts) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("muster.db").display()
    ))
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let providers = [ProviderConfig::Outbox(OutboxConfig {
        name: "outbox".into(),
        channels: vec![muster_core::ChannelType::Email],
        path: Some(dir.path().join("sent.jsonl")),
        timeout_seconds: None,
    })];
    let notifier = Notifier::new(&providers, dir.path(), None)
        .unwrap()
        .with_clock(clock.clone());
    let messaging = Messaging::new(
        notifier,
        &providers,
        Default::default(),
        muster_app::codes::CodeKey::derive(&[7u8; 32]),
        None,
        None,
    );
    let app = Arc::new(App::new(
        store,
        clock,
        Arc::new(messaging),
        Region::parse("us-east-1").unwrap(),
    ));
    let plan = ResponsePlan {
        template: IncidentTemplate {
            title: "From monitoring".into(),
            impact: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    let plan_arn = app
        .create_response_plan(&caller(&app), "alerts", plan, Default::default(), None)
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let routes = router(Arc::new(AlertState {
        app: app.clone(),
        sns,
    }));
    tokio::spawn(async move { axum::serve(listener, routes).await });
    Served {
        url,
        app,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        plan_arn,
        _dir: dir,
    }
}

fn caller(app: &App) -> muster_app::Caller {
    app.system(AccountId::parse(ACCOUNT).unwrap())
}

impl Served {
    /// A new integration of `format` on the plan: its key.
    pub async fn integration(&self, format: Format) -> String {
        let (_, key) = self
            .app
            .create_integration(
                &caller(&self.app),
                &format!("via {format}"),
                format,
                &self.plan_arn,
            )
            .await
            .unwrap();
        key
    }

    /// Tags the plan (`muster:dedupe` …).
    pub async fn tag_plan(&self, key: &str, value: &str) {
        self.app
            .tag_incidents_resource(
                &caller(&self.app),
                &self.plan_arn,
                [(key.to_string(), value.to_string())].into(),
            )
            .await
            .unwrap();
    }

    pub async fn incidents(&self) -> Vec<muster_app::incidents::Incident> {
        self.app
            .list_incidents(
                &caller(&self.app),
                &IncidentFilter::default(),
                &After::Start,
                100,
            )
            .await
            .unwrap()
    }
}
