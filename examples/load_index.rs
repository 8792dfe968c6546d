//! Times `formats::image::load` (and a platform selection) of a ref, for
//! `benches/images.sh`:
//!
//! ```text
//! cargo run --release --example load_index -- LAYOUT REF [OS/ARCH[/VARIANT]]
//! ```
//!
//! Prints the number of images, the best match for the platform (if
//! given), and the milliseconds `load` took (median of 5 runs, in this
//! process, so that process start-up is not counted).

use std::time::Instant;

use epoch_store::Layout;
use epoch_store::formats::image::{LayoutLoader, load};
use epoch_store::model::platform::PlatformSpec;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [layout, target, rest @ ..] = args.as_slice() else {
        return Err("usage: load_index LAYOUT REF [PLATFORM]".into());
    };
    let layout = Layout::open(layout)?;
    let wanted: Option<PlatformSpec> = rest.first().map(|p| p.parse()).transpose()?;
    let mut times = Vec::new();
    let mut summary = String::new();
    for _ in 0..5 {
        let started = Instant::now();
        let loader = LayoutLoader::new(&layout, target)?;
        let loaded = load(&loader)?;
        let best = wanted.as_ref().and_then(|w| {
            loaded
                .select_by_platform(w)
                .first()
                .map(|i| i.manifest.digest.to_string())
        });
        times.push(started.elapsed().as_secs_f64() * 1e3);
        summary = format!("{} images, best {:?}", loaded.images.len(), best);
    }
    times.sort_by(f64::total_cmp);
    println!("{summary}; load {:.1} ms (median of 5)", times[2]);
    Ok(())
}
