//! From a parsed command line to the command that does the work: one arm
//! per verb, aliases (`image ls`, `container rm`...) beside their verb.

use anyhow::Result;

use super::{
    archive, attach, build, commit, container, cp, exec, generate, image, info, login, network,
    push, run, start, stats, system, volume,
};
use crate::cli::args::{
    BuilderCommand, Command, ContainerCommand, GenerateCommand, ImageCommand, NetworkCommand,
    SystemCommand, VolumeCommand,
};

/// Runs `command`; its exit status, or the error rocker reports.
pub fn execute(command: Command) -> Result<i32> {
    match command {
        Command::Run(args) => run::run(*args),
        Command::Create(args) | Command::Container(ContainerCommand::Create(args)) => {
            run::create(*args)
        }
        Command::Start(args) | Command::Container(ContainerCommand::Start(args)) => {
            start::start_command(args)
        }
        Command::Restart(args) | Command::Container(ContainerCommand::Restart(args)) => {
            start::restart_command(args)
        }
        Command::Generate(GenerateCommand::Systemd(args)) => generate::systemd_command(args),
        Command::Attach(args) | Command::Container(ContainerCommand::Attach(args)) => {
            attach::attach_command(args)
        }
        Command::Cp(args) | Command::Container(ContainerCommand::Cp(args)) => cp::cp_command(args),
        Command::Pause(args) | Command::Container(ContainerCommand::Pause(args)) => {
            container::pause_command(args)
        }
        Command::Unpause(args) | Command::Container(ContainerCommand::Unpause(args)) => {
            container::unpause_command(args)
        }
        Command::Info(args) => info::run(args),
        Command::PortForwarder { args } => crate::network::forwarder::serve(&args).map(|()| 0),
        Command::NetworkKeeper => {
            let dirs = crate::host::dirs::Dirs::discover()?;
            crate::network::keeper::serve(dirs.ensure_runtime()?).map(|()| 0)
        }
        Command::Version(args) => info::version(args),
        Command::Pull(args) | Command::Image(ImageCommand::Pull(args)) => image::pull_command(args),
        Command::Push(args) | Command::Image(ImageCommand::Push(args)) => push::push_command(args),
        Command::Save(args) | Command::Image(ImageCommand::Save(args)) => {
            archive::save_command(args)
        }
        Command::Load(args) | Command::Image(ImageCommand::Load(args)) => {
            archive::load_command(args)
        }
        Command::Build(args) => build::build_command(args),
        Command::Builder(BuilderCommand::Prune) => build::builder_prune_command(),
        Command::Completion(args) => {
            use clap::CommandFactory;
            let mut command = crate::cli::args::Cli::command();
            // Written whole, as any output: clap_complete panics on a
            // closed pipe.
            let mut script = vec![];
            clap_complete::generate(args.shell, &mut command, "rocker", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)?;
            Ok(0)
        }
        Command::System(SystemCommand::Df) => system::df_command(),
        Command::System(SystemCommand::Prune(args)) => system::prune_command(args),
        Command::Network(NetworkCommand::Create(args)) => network::create_command(args),
        Command::Network(NetworkCommand::Ls(args)) => network::ls_command(args),
        Command::Network(NetworkCommand::Inspect(args)) => network::inspect_command(args),
        Command::Network(NetworkCommand::Rm(args)) => network::rm_command(args),
        Command::Network(NetworkCommand::Prune(args)) => network::prune_command(args),
        Command::Network(NetworkCommand::Connect(args)) => network::connect_command(args),
        Command::Network(NetworkCommand::Disconnect(args)) => network::disconnect_command(args),
        Command::Volume(VolumeCommand::Create(args)) => volume::create_command(args),
        Command::Volume(VolumeCommand::Ls(args)) => volume::ls_command(args),
        Command::Volume(VolumeCommand::Inspect(args)) => volume::inspect_command(args),
        Command::Volume(VolumeCommand::Rm(args)) => volume::rm_command(args),
        Command::Volume(VolumeCommand::Prune(args)) => volume::prune_command(args),
        Command::Commit(args) | Command::Container(ContainerCommand::Commit(args)) => {
            commit::commit_command(args)
        }
        Command::Export(args) | Command::Container(ContainerCommand::Export(args)) => {
            commit::export_command(args)
        }
        Command::Import(args) | Command::Image(ImageCommand::Import(args)) => {
            commit::import_command(args)
        }
        Command::Images(args) | Command::Image(ImageCommand::Ls(args)) => {
            image::images_command(args)
        }
        Command::Rmi(args) | Command::Image(ImageCommand::Rm(args)) => image::rmi_command(args),
        Command::Tag(args) | Command::Image(ImageCommand::Tag(args)) => image::tag_command(args),
        Command::History(args) | Command::Image(ImageCommand::History(args)) => {
            image::history_command(args)
        }
        Command::Image(ImageCommand::Prune(_)) => image::prune_command(),
        Command::Image(ImageCommand::Inspect(args)) => image::inspect_command(args),
        Command::Ps(args) | Command::Container(ContainerCommand::Ls(args)) => {
            container::ps_command(args)
        }
        Command::Logs(args) | Command::Container(ContainerCommand::Logs(args)) => {
            container::logs_command(args)
        }
        Command::Exec(args) | Command::Container(ContainerCommand::Exec(args)) => {
            exec::exec_command(args)
        }
        Command::Stats(args) => stats::stats_command(args),
        Command::Stop(args) | Command::Container(ContainerCommand::Stop(args)) => {
            container::stop_command(args)
        }
        Command::Wait(args) | Command::Container(ContainerCommand::Wait(args)) => {
            container::wait_command(args)
        }
        Command::Port(args) | Command::Container(ContainerCommand::Port(args)) => {
            container::port_command(args)
        }
        Command::Rename(args) | Command::Container(ContainerCommand::Rename(args)) => {
            container::rename_command(args)
        }
        Command::Diff(args) | Command::Container(ContainerCommand::Diff(args)) => {
            container::diff_command(args)
        }
        Command::Top(args) | Command::Container(ContainerCommand::Top(args)) => {
            container::top_command(args)
        }
        Command::Kill(args) | Command::Container(ContainerCommand::Kill(args)) => {
            container::kill_command(args)
        }
        Command::Rm(args) | Command::Container(ContainerCommand::Rm(args)) => {
            container::rm_command(args)
        }
        Command::Inspect(args) | Command::Container(ContainerCommand::Inspect(args)) => {
            container::inspect_command(args)
        }
        Command::Container(ContainerCommand::Prune(_)) => container::prune_command(),
        Command::Login(args) => login::login_command(args),
        Command::Logout(args) => login::logout_command(args),
    }
}
