//! Adversaries: trainers and validators that try to earn without doing the work, or to make
//! others lose, modelled as conducts ([`cairn_node::protocol::TrainerConduct`],
//! [`cairn_node::protocol::ValidatorConduct`]) that wrap the honest agent's decisions. They live
//! here, in the simulator, so that the node never compiles one.
//!
//! | behaviour | what it does | what stops it |
//! | --- | --- | --- |
//! | `attack` / `sybil` | colluders reveal a crafted vector ([`trainer::Crafting`]) | robust rule; identical vectors are always audited and the crafted update is not the trainer's work |
//! | `label_flip` | trains on flipped labels ([`trainer::LabelFlipping`]) | audits (its batches hold the wrong labels) |
//! | `free_rider` | reveals zero or the last global step without training ([`trainer::FreeRiding`]) | scores 0; audits |
//! | `non_revealer`, `malformed_blob` | withholds, or reveals garbage | slashed at close; excluded and scored 0 |
//! | `withholder` | reveals the hash, serves the update to nobody ([`trainer::Hoarding`]) | availability votes: it does not count; slashed when it repeats |
//! | `lazy` | trains a fraction of its steps or shard ([`trainer::Lazy`]) | audits: the first skipped step is wrong |
//! | `forged_trace` | one step scaled up, a made-up trace ([`trainer::Forging`]) | audits; the referee re-runs step 1 |
//! | `copier` | recomputes a victim's update ([`trainer::Copying`]) | a duplicate is always audited; the victim is not |
//! | `noise_sybil` | one run sold under several identities with noise ([`trainer::NoiseSybil`]) | audits of each identity |
//! | `perturbed_stale` | last global step plus noise ([`trainer::StaleReplay`]) | audits |
//! | `scaled` | honest run, update times a factor ([`trainer::Scaling`]) | audits: the last step's update is wrong |
//! | [`trainer::Lying`] (tests) | a trace wrong from a chosen step | the dispute narrows to that step |
//! | `wrong_model_hash`, `copy_scores`, `silent` | attest falsely, copy scores, stay silent | 2/3 agreement; clipped scores |
//! | `lazy_auditor` | never audits ([`validator::LazyAuditor`]) | a second auditor |
//! | `false_challenger` | challenges without cause ([`validator::FalseChallenger`]) | loses its bond to the trainer |

pub mod coalition;
pub mod trainer;
pub mod trajectory;
pub mod validator;

use std::sync::{Arc, Mutex};

use cairn_node::protocol::{HonestTrainer, HonestValidator, TrainerConduct, ValidatorConduct};
use cairn_round::Address;

use crate::scenario::{self, LazyKind, TrainerBehaviour, ValidatorBehaviour};
use coalition::{Coalition, SybilPool};
use trainer::{FreeRide, Laziness};

/// What a trainer's conduct may share with other nodes of its scenario.
#[derive(Clone, Debug, Default)]
pub struct Accomplices {
    /// The coalition crafting its attack (attack and Sybil groups).
    pub coalition: Option<Arc<Mutex<Coalition>>>,
    /// The run its noise-Sybil identities share, and whether it is the one that trains.
    pub sybil: Option<(Arc<Mutex<SybilPool>>, bool)>,
    /// A copier's victim.
    pub victim: Option<Address>,
}

/// The conduct of a trainer with this scenario behaviour.
pub fn trainer_conduct(
    behaviour: &TrainerBehaviour,
    accomplices: &Accomplices,
) -> Box<dyn TrainerConduct> {
    let coalition = || accomplices.coalition.clone().unwrap_or_default();
    match behaviour {
        TrainerBehaviour::Honest => Box::new(HonestTrainer),
        TrainerBehaviour::Attack(attack) | TrainerBehaviour::Sybil(attack) => {
            Box::new(trainer::Crafting::new(attack.clone(), coalition()))
        }
        TrainerBehaviour::LabelFlip => Box::new(trainer::LabelFlipping),
        TrainerBehaviour::FreeRider(scenario::FreeRide::Zero) => {
            Box::new(trainer::FreeRiding(FreeRide::Zero))
        }
        TrainerBehaviour::FreeRider(scenario::FreeRide::Stale) => {
            Box::new(trainer::FreeRiding(FreeRide::Stale))
        }
        TrainerBehaviour::NonRevealer => Box::new(trainer::Withholding),
        TrainerBehaviour::Withholder => Box::new(trainer::Hoarding),
        TrainerBehaviour::MalformedBlob => Box::new(trainer::Malforming),
        TrainerBehaviour::Lazy { kind, fraction } => Box::new(trainer::Lazy(match kind {
            LazyKind::Steps => Laziness::Steps(*fraction),
            LazyKind::Shard => Laziness::Shard(*fraction),
        })),
        TrainerBehaviour::ForgedTrace => Box::new(trainer::Forging),
        TrainerBehaviour::Copier { .. } => match accomplices.victim {
            Some(victim) => Box::new(trainer::Copying { victim }),
            None => Box::new(HonestTrainer),
        },
        TrainerBehaviour::NoiseSybil { noise } => {
            let (pool, primary) = accomplices
                .sybil
                .clone()
                .unwrap_or_else(|| (Arc::default(), true));
            Box::new(trainer::NoiseSybil::new(pool, primary, *noise))
        }
        TrainerBehaviour::PerturbedStale { noise } => {
            Box::new(trainer::StaleReplay { noise: *noise })
        }
        TrainerBehaviour::Scaled { factor } => Box::new(trainer::Scaling { factor: *factor }),
    }
}

/// The conduct of a validator with this scenario behaviour.
pub fn validator_conduct(behaviour: ValidatorBehaviour) -> Box<dyn ValidatorConduct> {
    match behaviour {
        ValidatorBehaviour::Honest => Box::new(HonestValidator),
        ValidatorBehaviour::WrongModelHash => Box::new(validator::WrongHash),
        ValidatorBehaviour::CopyScores => Box::new(validator::ScoreCopier),
        ValidatorBehaviour::Silent => Box::new(validator::Mute),
        ValidatorBehaviour::LazyAuditor => Box::new(validator::LazyAuditor),
        ValidatorBehaviour::FalseChallenger => Box::new(validator::FalseChallenger),
    }
}
