//! `bake build`: run every build of each template (in parallel within a template, templates in order),
//! clean up whatever happens, run post-processors, print the artifacts as Packer does.

use super::{BuildArgs, OnErrorArg, template_args};
use bakery_builder::amazon_ebs::{
    self,
    state::{Ctx, SourceImage},
};
use bakery_builder::journal::{self, Journal};
use bakery_core::aws::{AwsSettings, Clients, load_sdk_config};
use bakery_core::frontend::interrupt::{self, Messages, Tokens};
use bakery_core::frontend::terminal::{Output, stdout_is_terminal};
use bakery_core::pipeline::{AskAnswer, OnError, RunControl, StepError};
use bakery_core::poll::PollOverrides;
use bakery_core::ui::{Mode, Ui};
use bakery_template::{Build, BuilderConfig, Loaded, PostProcessorConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A placeholder for `-pass-ami` variables while validating templates before the AMI exists.
const PLACEHOLDER_AMI: &str = "ami-00000000000000000";

fn print_diagnostics(what: &str, d: &bakery_template::Diagnostics) {
    for diag in &d.0 {
        eprintln!("{diag}");
    }
    let n = d.errors().count();
    eprintln!("\n{what}: {n} error{} found", if n == 1 { "" } else { "s" });
}

/// One bake of a template: with `--each-var-file`, one per var-file, whose stem labels its builds.
struct Job<'a> {
    template: &'a Path,
    each: Option<&'a Path>,
    label: Option<String>,
}

impl Job<'_> {
    /// How errors name this job: the template, and the var-file that makes it one of several.
    fn describe(&self) -> String {
        match self.each {
            Some(f) => format!(
                "{} with --each-var-file {}",
                self.template.display(),
                f.display()
            ),
            None => self.template.display().to_string(),
        }
    }

    /// The name a build of this job is shown (and recorded in manifests) under.
    fn build_name(&self, rendered: &str) -> String {
        match &self.label {
            Some(l) => format!("{rendered} ({l})"),
            None => rendered.to_string(),
        }
    }
}

/// The jobs of each template, in template order; a usage error for combinations that make no sense.
fn jobs(args: &BuildArgs) -> Result<Vec<Vec<Job<'_>>>, String> {
    if args.each_var_files.is_empty() {
        return Ok(args
            .templates
            .iter()
            .map(|t| {
                vec![Job {
                    template: t,
                    each: None,
                    label: None,
                }]
            })
            .collect());
    }
    if args.pass_ami.is_some() {
        return Err("--each-var-file cannot be combined with -pass-ami: each template builds one AMI per var-file, so there is no single AMI to pass to the next template (run one bake per var-file instead)".into());
    }
    if args.publish_ssm.is_some() {
        return Err("--each-var-file cannot be combined with --publish-ssm: the runs would overwrite each other's parameter (publish from the manifest instead)".into());
    }
    let mut labels: BTreeMap<String, &Path> = BTreeMap::new();
    for f in &args.each_var_files {
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("--each-var-file {}: not a file name", f.display()))?;
        if let Some(prev) = labels.insert(stem.clone(), f) {
            return Err(format!(
                "--each-var-file {} and {} would both label their builds \"{stem}\"; give every var-file its own name",
                prev.display(),
                f.display()
            ));
        }
    }
    Ok(args
        .templates
        .iter()
        .map(|t| {
            args.each_var_files
                .iter()
                .map(|f| Job {
                    template: t,
                    each: Some(f),
                    label: f.file_stem().map(|s| s.to_string_lossy().to_string()),
                })
                .collect()
        })
        .collect())
}

fn load(
    args: &BuildArgs,
    job: &Job,
    extra: &[(String, String)],
) -> Result<Loaded, bakery_template::Diagnostics> {
    let mut t = template_args(&args.vars, job.template.to_path_buf());
    // Packer's precedence: later var-files win, -var wins over every file.
    t.var_files.extend(job.each.map(Path::to_path_buf));
    t.vars.extend(extra.iter().cloned());
    bakery_template::load(job.template, &t.load_options(false))
}

/// The AWS settings of an amazon-ebs build.
pub fn aws_settings(
    cfg: &bakery_template::AmazonEbsConfig,
    endpoint_url: Option<&str>,
) -> AwsSettings {
    let a = &cfg.access;
    let ne = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
    AwsSettings {
        region: ne(&a.region),
        profile: ne(&a.profile),
        access_key: ne(&a.access_key),
        secret_key: ne(&a.secret_key),
        token: ne(&a.token),
        assume_role: a.assume_role.as_ref().and_then(|r| {
            r.role_arn
                .clone()
                .filter(|s| !s.is_empty())
                .map(|arn| bakery_core::aws::AssumeRole {
                    role_arn: arn,
                    session_name: ne(&r.session_name),
                    external_id: ne(&r.external_id),
                    duration: r
                        .duration_seconds
                        .map(|s| Duration::from_secs(s.max(0) as u64)),
                })
        }),
        endpoint_url: endpoint_url.map(str::to_string),
        ec2_endpoint: ne(&a.custom_endpoint_ec2),
        max_retries: (a.max_retries > 0).then_some(a.max_retries as u32),
    }
}

/// SDK configs loaded once per distinct set of access settings.
#[derive(Default)]
struct SdkConfigs(Vec<(AwsSettings, aws_config::SdkConfig)>);

impl SdkConfigs {
    async fn get(&mut self, s: &AwsSettings) -> aws_config::SdkConfig {
        if let Some((_, c)) = self.0.iter().find(|(k, _)| k == s) {
            return c.clone();
        }
        let c = load_sdk_config(s).await;
        self.0.push((s.clone(), c.clone()));
        c
    }
}

fn ui_for(args: &BuildArgs, secrets: &[String]) -> Ui {
    let mode = if args.machine_readable {
        Mode::MachineReadable
    } else if args.json {
        Mode::Json
    } else {
        Mode::Human
    };
    let output = Output {
        mode,
        color: args.color,
        timestamps: args.timestamp_ui,
        tty: stdout_is_terminal(),
    };
    Ui::stdout(output.ui_options(secrets.to_vec()))
}

fn on_error(a: OnErrorArg) -> OnError {
    match a {
        OnErrorArg::Cleanup => OnError::Cleanup,
        OnErrorArg::Abort => OnError::Abort,
        OnErrorArg::Ask => OnError::Ask,
        OnErrorArg::RunCleanupProvisioner => OnError::RunCleanupProvisioner,
    }
}

/// What bake says on each interrupt.
const INTERRUPT_MESSAGES: Messages = Messages {
    target: "bake",
    first: "Interrupt received. Cleaning up... (interrupt again to stop cleanup and leave resources)",
    second: "Second interrupt: stopping cleanup.",
};

fn ask(step: &str, err: &StepError) -> AskAnswer {
    use std::io::BufRead;
    eprintln!(
        "Step \"{step}\" failed: {err}\n[c] Clean up and exit, [a] abort without cleanup, or [r] retry step (build may fail even if retry succeeds)?"
    );
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    match line.trim() {
        "a" | "A" => AskAnswer::Abort,
        "r" | "R" => AskAnswer::Retry,
        _ => AskAnswer::Cleanup,
    }
}

/// One finished build, for the summary.
struct Finished {
    name: String,
    /// The build region (whose AMI `-pass-ami` passes on).
    region: String,
    amis: BTreeMap<String, String>,
    error: Option<String>,
    elapsed: Duration,
}

/// Runs `bake build`; returns the exit code.
pub async fn run(args: BuildArgs) -> i32 {
    let groups = match jobs(&args) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("bake: {e}");
            return 1;
        }
    };
    // Every template (with every var-file) is checked before anything is created.
    let mut secrets: Vec<String> = Vec::new();
    let mut invalid = false;
    for (i, job) in groups
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.iter().map(move |j| (i, j)))
    {
        let extra: Vec<(String, String)> = match (&args.pass_ami, i) {
            (Some(var), i) if i > 0 => vec![(var.clone(), PLACEHOLDER_AMI.to_string())],
            _ => vec![],
        };
        match load(&args, job, &extra) {
            Ok(l) => {
                secrets.extend(l.secrets.values().iter().cloned());
                for w in &l.warnings {
                    eprintln!("{w}");
                }
            }
            Err(d) => {
                print_diagnostics(&job.describe(), &d);
                invalid = true;
            }
        }
    }
    if invalid {
        return 1;
    }
    let ui = ui_for(&args, &secrets);
    if args.dry_run {
        return dry_run(&args, &groups, &ui).await;
    }
    let run_id = uuid::Uuid::new_v4().to_string();
    let state = journal::state_dir();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let journal = match Journal::create(&state, &run_id, &command) {
        Ok(j) => Arc::new(j),
        Err(e) => {
            eprintln!(
                "bake: cannot create the run journal in {}: {e}",
                state.display()
            );
            return 1;
        }
    };
    let cancel = CancellationToken::new();
    let cancel_cleanup = CancellationToken::new();
    let tokens = Tokens {
        cancel: cancel.clone(),
        cancel_cleanup: cancel_cleanup.clone(),
    };
    interrupt::watch(ui.clone(), INTERRUPT_MESSAGES, tokens);
    let ctl = RunControl {
        cancel: cancel.clone(),
        cancel_cleanup: cancel_cleanup.clone(),
        on_error: on_error(args.on_error),
        cleanup_deadline: Duration::from_secs(20 * 60),
        ask: (args.on_error == OnErrorArg::Ask)
            .then(|| Box::new(ask) as bakery_core::pipeline::AskFn),
    };
    let mut sdk = SdkConfigs::default();
    let mut finished: Vec<Finished> = Vec::new();
    let mut passed: Option<String> = None;
    let mut failed = false;
    'templates: for group in &groups {
        let extra: Vec<(String, String)> = match (&args.pass_ami, &passed) {
            (Some(var), Some(ami)) => vec![(var.clone(), ami.clone())],
            _ => vec![],
        };
        let mut loaded = Vec::new();
        for job in group {
            match load(&args, job, &extra) {
                Ok(l) => loaded.push((job, l)),
                Err(d) => {
                    print_diagnostics(&job.describe(), &d);
                    failed = true;
                    break 'templates;
                }
            }
        }
        let results = run_template(&args, &loaded, &ui, &journal, &run_id, &ctl, &mut sdk).await;
        // The build region's AMI of the first build that succeeded.
        passed = results
            .iter()
            .find(|f| f.error.is_none())
            .and_then(|f| f.amis.get(&f.region).cloned());
        let any_failed = results.iter().any(|f| f.error.is_some());
        finished.extend(results);
        if any_failed || cancel.is_cancelled() {
            failed = true;
            break;
        }
    }
    summarize(&ui, &finished);
    if !failed && let Some(param) = &args.publish_ssm {
        failed |= !publish_ssm(&ui, &mut sdk, &args, param, &finished).await;
    }
    let journal = Arc::try_unwrap(journal).ok();
    if let Some(j) = journal
        && let Some(path) = j.close()
    {
        ui.error(
            "bake",
            &format!(
                "Some resources were left behind (journal: {}). Run `bake cleanup` to remove them.",
                path.display()
            ),
        );
        failed = true;
    }
    if failed { 1 } else { 0 }
}

/// What every build of a run (or of a dry run) shares.
struct Shared<'a> {
    ui: &'a Ui,
    /// None in a dry run.
    journal: Option<Arc<Journal>>,
    run_id: &'a str,
    cancel: CancellationToken,
    cancel_cleanup: CancellationToken,
    on_error: OnError,
    waits: Arc<bakery_core::poll::ec2::WaitRegistry>,
}

/// The context of one build, shown as `name`.
async fn context(
    args: &BuildArgs,
    shared: &Shared<'_>,
    name: String,
    b: &Build,
    sdk: &mut SdkConfigs,
) -> Ctx {
    let BuilderConfig::AmazonEbs(cfg) = &b.builder;
    let settings = aws_settings(cfg, args.endpoint_url.as_deref());
    let sdk_config = sdk.get(&settings).await;
    let clients = Clients::for_region(
        &sdk_config,
        cfg.access.region.as_deref().filter(|s| !s.is_empty()),
        settings.ec2_endpoint.as_deref(),
    );
    let polling = cfg.access.aws_polling.as_ref().map(|p| PollOverrides {
        delay: p
            .delay_seconds
            .filter(|d| *d > 0)
            .map(|d| Duration::from_secs(d as u64)),
        max_attempts: p.max_attempts.filter(|d| *d > 0).map(|d| d as u32),
    });
    Ctx {
        name,
        build: b.clone(),
        cfg: Arc::new((**cfg).clone()),
        sdk: sdk_config,
        clients,
        ui: shared.ui.clone(),
        journal: shared.journal.clone(),
        run_id: shared.run_id.to_string(),
        cancel: shared.cancel.clone(),
        cancel_cleanup: shared.cancel_cleanup.clone(),
        force: args.force,
        debug: args.debug,
        poll: PollOverrides::from_env().or(polling.unwrap_or_default()),
        error_cleanup: matches!(
            shared.on_error,
            OnError::Cleanup | OnError::RunCleanupProvisioner | OnError::Ask
        ),
        waits: shared.waits.clone(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_template(
    args: &BuildArgs,
    loaded: &[(&Job<'_>, Loaded)],
    ui: &Ui,
    journal: &Arc<Journal>,
    run_id: &str,
    ctl: &RunControl,
    sdk: &mut SdkConfigs,
) -> Vec<Finished> {
    let limit = if args.debug {
        1
    } else if args.parallel_builds == 0 {
        usize::MAX >> 4
    } else {
        args.parallel_builds
    };
    let sem = tokio::sync::Semaphore::new(limit);
    let shared = Shared {
        ui,
        journal: Some(journal.clone()),
        run_id,
        cancel: ctl.cancel.clone(),
        cancel_cleanup: ctl.cancel_cleanup.clone(),
        on_error: ctl.on_error,
        // The builds' waits share one Describe call per tick (bakery_core::poll::batch).
        waits: Arc::new(bakery_core::poll::ec2::WaitRegistry::new()),
    };
    let mut ctxs = Vec::new();
    // Every build of every job shares the one -parallel-builds limit.
    for (job, b) in loaded
        .iter()
        .flat_map(|(j, l)| l.builds.iter().map(move |b| (j, b)))
    {
        ctxs.push(context(args, &shared, job.build_name(&b.rendered_name), b, sdk).await);
    }
    let runs = ctxs.iter().map(|cx| {
        let sem = &sem;
        async move {
            let _permit = sem.acquire().await.ok();
            let start = Instant::now();
            let res = amazon_ebs::run(cx, ctl).await;
            let elapsed = start.elapsed();
            let mut error = None;
            if let Some((step, e)) = &res.report.error {
                let msg = format!("{e}");
                ui.error(
                    &cx.name,
                    &format!(
                        "Build '{}' errored after {}: {msg}",
                        cx.name,
                        bakery_builder::util::human_duration(elapsed)
                    ),
                );
                tracing::debug!(step, "build failed");
                error = Some(msg);
            }
            for f in &res.report.cleanup_failures {
                ui.error(
                    &cx.name,
                    &format!("cleanup of {} failed: {}", f.step, f.error),
                );
            }
            if res.report.cleanup_skipped {
                ui.error(
                    &cx.name,
                    "Cleanup was skipped; `bake cleanup` removes what this run left.",
                );
            }
            if error.is_none()
                && let Err(e) = post_process(args, cx, &res.amis, &res.late).await
            {
                ui.error(&cx.name, &format!("Post-processor failed: {e}"));
                error = Some(e);
            }
            Finished {
                name: cx.name.clone(),
                region: cx.region().to_string(),
                amis: res.amis,
                error,
                elapsed,
            }
        }
    });
    bakery_builder::util::join_all(runs).await
}

async fn post_process(
    args: &BuildArgs,
    cx: &Ctx,
    amis: &BTreeMap<String, String>,
    late: &bakery_template::LateContext,
) -> Result<(), String> {
    let artifact = bakery_provision::manifest::Artifact {
        build_name: cx.name.clone(),
        builder_type: cx.build.builder_type.clone(),
        artifact_id: amis
            .iter()
            .map(|(r, a)| format!("{r}:{a}"))
            .collect::<Vec<_>>()
            .join(","),
        files: None,
        build_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    for chain in &cx.build.post_processors {
        for pp in chain {
            match pp {
                PostProcessorConfig::Manifest(m) => {
                    let path = bakery_provision::manifest::write(
                        m, &artifact, &cx.run_id, late, args.force, &cx.ui,
                    )
                    .map_err(|e| e.to_string())?;
                    cx.ui
                        .say(&cx.name, &format!("Writing manifest: {}", path.display()));
                }
                PostProcessorConfig::ShellLocal(s) => {
                    bakery_provision::run_shell_local(
                        s,
                        &cx.ui,
                        &cx.name,
                        &cx.build.builder_type,
                        late,
                        &cx.cancel,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

fn summarize(ui: &Ui, finished: &[Finished]) {
    let errored: Vec<&Finished> = finished.iter().filter(|f| f.error.is_some()).collect();
    if !errored.is_empty() {
        ui.plain("\n==> Some builds didn't complete successfully and had errors:");
        for f in &errored {
            ui.plain(&format!(
                "--> {}: {}",
                f.name,
                f.error.as_deref().unwrap_or_default()
            ));
        }
    }
    let ok: Vec<&Finished> = finished
        .iter()
        .filter(|f| f.error.is_none() && !f.amis.is_empty())
        .collect();
    if ok.is_empty() {
        if errored.is_empty() {
            ui.plain("\n==> Builds finished but no artifacts were created.");
        }
        return;
    }
    ui.plain("\n==> Builds finished. The artifacts of successful builds are:");
    for (i, f) in ok.iter().enumerate() {
        ui.plain(&format!("--> {}: AMIs were created:", f.name));
        let lines: Vec<String> = f.amis.iter().map(|(r, a)| format!("{r}: {a}")).collect();
        for l in &lines {
            ui.plain(l);
        }
        let id = f
            .amis
            .iter()
            .map(|(r, a)| format!("{r}:{a}"))
            .collect::<Vec<_>>()
            .join(",");
        let idx = i.to_string();
        ui.record(&f.name, "artifact-count", &["1"]);
        ui.record(
            &f.name,
            "artifact",
            &[&idx, "builder-id", "mitchellh.amazonebs"],
        );
        ui.record(&f.name, "artifact", &[&idx, "id", &id]);
        ui.record(
            &f.name,
            "artifact",
            &[
                &idx,
                "string",
                &format!("AMIs were created:\n{}\n", lines.join("\n")),
            ],
        );
        ui.record(&f.name, "artifact", &[&idx, "files-count", "0"]);
        ui.record(&f.name, "artifact", &[&idx, "end"]);
        tracing::debug!(elapsed = ?f.elapsed, "build finished");
    }
}

async fn publish_ssm(
    ui: &Ui,
    sdk: &mut SdkConfigs,
    args: &BuildArgs,
    param: &str,
    finished: &[Finished],
) -> bool {
    let ok: Vec<&Finished> = finished
        .iter()
        .filter(|f| f.error.is_none() && !f.amis.is_empty())
        .collect();
    let Some(last) = ok.last() else {
        ui.error("bake", "-publish-ssm: no AMI to publish");
        return false;
    };
    let settings = AwsSettings {
        endpoint_url: args.endpoint_url.clone(),
        ..Default::default()
    };
    let config = sdk.get(&settings).await;
    let mut all = true;
    for (region, ami) in &last.amis {
        let c = Clients::for_region(&config, Some(region), None);
        match c
            .ssm
            .put_parameter()
            .name(param)
            .value(ami)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
        {
            Ok(out) => ui.say(
                &last.name,
                &format!(
                    "Published {ami} to SSM parameter {param} in {region} (version {})",
                    out.version()
                ),
            ),
            Err(e) => {
                ui.error(
                    &last.name,
                    &format!(
                        "-publish-ssm {param} in {region}: {}",
                        bakery_core::aws_err::AwsError::new("PutParameter", e)
                    ),
                );
                all = false;
            }
        }
    }
    all
}

/// Stands in for the AMI an earlier template builds, in a dry run with `-pass-ami`.
const PREVIOUS_AMI: &str = "<AMI of the previous template>";

/// `--dry-run`: every build's plan, derived from its steps with read-only calls; nothing is created.
async fn dry_run(args: &BuildArgs, groups: &[Vec<Job<'_>>], ui: &Ui) -> i32 {
    let mut sdk = SdkConfigs::default();
    let shared = Shared {
        ui,
        journal: None,
        run_id: "dry-run",
        cancel: CancellationToken::new(),
        cancel_cleanup: CancellationToken::new(),
        on_error: on_error(args.on_error),
        waits: Arc::new(bakery_core::poll::ec2::WaitRegistry::new()),
    };
    let mut failed = false;
    for (i, job) in groups
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.iter().map(move |j| (i, j)))
    {
        let from_previous = i > 0 && args.pass_ami.is_some();
        let extra: Vec<(String, String)> = match &args.pass_ami {
            Some(var) if from_previous => vec![(var.clone(), PREVIOUS_AMI.to_string())],
            _ => vec![],
        };
        let Ok(loaded) = load(args, job, &extra) else {
            return 1;
        };
        ui.plain(&format!(
            "Template {} (dry run: nothing is created)",
            job.describe()
        ));
        for b in &loaded.builds {
            let cx = context(args, &shared, job.build_name(&b.rendered_name), b, &mut sdk).await;
            let source = from_previous.then(|| SourceImage {
                id: PREVIOUS_AMI.to_string(),
                name: "built by the previous template".to_string(),
                ..Default::default()
            });
            match amazon_ebs::plan(&cx, source).await {
                Ok(lines) => {
                    for l in &lines {
                        ui.message(&cx.name, l);
                    }
                }
                Err((step, e)) => {
                    ui.error(&cx.name, &format!("{step}: {e}"));
                    failed = true;
                }
            }
        }
    }
    if failed { 1 } else { 0 }
}
