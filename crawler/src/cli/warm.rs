//! The warm-up options of the native command line (cache status, verify, variants, the cache
//! index, adaptive speed, nodes), validated into the plain [`InspectionConfig`] and the adaptive
//! part of the pacing settings.

use std::path::PathBuf;

use crate::config::{
    CacheIndex, ConnectTo, InspectionConfig, KeyTemplate, Levels, Pacing, VariantSet, DEFAULT_KEY,
    DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_CONCURRENCY_CACHED,
};
use crate::Error;

/// The warm-up options as given on the command line.
#[derive(Clone, Debug, Default)]
pub struct WarmArgs {
    /// `--cache-header`.
    pub cache_header: Option<String>,
    /// `--verify`.
    pub verify: bool,
    /// `--variants`.
    pub variants: Option<String>,
    /// `--cache-path`.
    pub cache_path: Option<String>,
    /// `--cache-key`.
    pub cache_key: Option<String>,
    /// `--levels`.
    pub levels: Option<String>,
    /// `--index-out`.
    pub index_out: Option<String>,
    /// `--replay-keys`.
    pub replay_keys: Option<String>,
    /// `--max-concurrency`.
    pub max_concurrency: Option<usize>,
    /// A fixed `--concurrency` was given (adaptive off).
    pub fixed_concurrency: bool,
    /// `--max-rps`.
    pub max_rps: Option<f64>,
    /// `--max-load`.
    pub max_load: Option<f64>,
    /// `--cpu-reserve`.
    pub cpu_reserve: Option<f64>,
    /// `--connect-to`, repeatable.
    pub connect_to: Vec<String>,
}

/// The warm-up options, validated: they fill the inspection group and decide how the run paces
/// itself (the caller adds the fixed concurrency and the wait).
#[derive(Clone, Debug)]
pub(crate) struct Warm {
    /// Cache status, verify, variants, index, replay, nodes.
    pub inspection: InspectionConfig,
    /// Adaptive concurrency, unless a fixed `--concurrency` was given.
    pub adaptive: Option<Pacing>,
    /// `--max-load`.
    pub max_load: Option<f64>,
}

/// Validates and converts the command-line values.
pub(crate) fn warm_config(a: &WarmArgs) -> Result<Warm, Error> {
    let template =
        KeyTemplate::parse(a.cache_key.as_deref().unwrap_or(DEFAULT_KEY)).map_err(Error::usage)?;
    let levels = Levels::parse(a.levels.as_deref().unwrap_or("1:2")).map_err(Error::usage)?;
    if a.cache_path.is_none() && (a.index_out.is_some() || a.levels.is_some()) {
        return Err(Error::usage("--index-out and --levels need --cache-path"));
    }
    if a.cache_key.is_some() && a.cache_path.is_none() && a.replay_keys.is_none() {
        return Err(Error::usage(
            "--cache-key needs --cache-path or --replay-keys",
        ));
    }
    let index = a.cache_path.as_ref().map(|p| CacheIndex {
        template: template.clone(),
        base: PathBuf::from(p),
        levels: levels.clone(),
        check: true,
    });
    if a.fixed_concurrency && a.max_concurrency.is_some() {
        return Err(Error::usage(
                "--concurrency fixes the requests in flight and --max-concurrency caps the adaptive number: give one",
            ));
    }
    let adaptive = if a.fixed_concurrency {
        None
    } else {
        let c = Pacing {
            max_concurrency: a.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY),
            max_concurrency_cached: a.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY_CACHED),
            max_rps: a.max_rps,
            cpu_reserve: a.cpu_reserve,
            ..Pacing::default()
        };
        c.validate().map_err(Error::usage)?;
        if c.max_concurrency > 1024 {
            return Err(Error::usage("--max-concurrency must be between 1 and 1024"));
        }
        Some(c)
    };
    if let Some(r) = a.cpu_reserve {
        if !(r.is_finite() && r >= 0.0) {
            return Err(Error::usage(
                "--cpu-reserve must be a number of cores, 0 or more",
            ));
        }
        if a.fixed_concurrency {
            return Err(Error::usage(
                "--cpu-reserve works with adaptive concurrency; drop --concurrency",
            ));
        }
    }
    if a.fixed_concurrency && a.max_rps.is_some() {
        return Err(Error::usage(
            "--max-rps works with adaptive concurrency; drop --concurrency",
        ));
    }
    if let Some(l) = a.max_load {
        if !(l.is_finite() && l > 0.0) {
            return Err(Error::usage("--max-load must be a positive number"));
        }
    }
    let connect_to = a
        .connect_to
        .iter()
        .map(|c| ConnectTo::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::usage)?;
    Ok(Warm {
        inspection: InspectionConfig {
            cache_header: a.cache_header.clone(),
            verify: a.verify,
            variants: a
                .variants
                .as_deref()
                .map(VariantSet::parse)
                .transpose()
                .map_err(Error::usage)?,
            index,
            index_out: a.index_out.as_ref().map(PathBuf::from),
            replay_keys: a.replay_keys.as_ref().map(|d| (PathBuf::from(d), template)),
            connect_to,
        },
        adaptive,
        max_load: a.max_load,
    })
}

/// Pacing defaults of the wget dialect: adaptive concurrency unless `--wait` asks for one at a
/// time.
pub(crate) fn wget_adaptive(wait_is_zero: bool) -> Option<Pacing> {
    wait_is_zero.then(Pacing::default)
}
