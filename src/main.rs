#[tokio::main]
async fn main() {
    if let Err(error) = civicpay::cli::main().await {
        eprintln!("civicpay: {error:#}");
        std::process::exit(1);
    }
}
