//! `bake`: build AMIs from Packer JSON templates (see `bakery::cli::bake`).

fn main() -> std::process::ExitCode {
    bakery::cli::bake::main()
}
