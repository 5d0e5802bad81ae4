//! Every (state, event) pair of the run lifecycle.

use super::*;
use RunAction as A;
use RunEvent as E;
use RunState as S;
use RunSubState as Sub;

const DISTRIBUTED_ALL: E = E::Distributed {
    succeeded: 3,
    failed: 0,
};
const DISTRIBUTED_SOME: E = E::Distributed {
    succeeded: 2,
    failed: 1,
};
const DISTRIBUTED_NONE: E = E::Distributed {
    succeeded: 0,
    failed: 3,
};

const EVENTS: [E; 9] = [
    E::Start,
    E::PhaseSucceeded,
    E::PhaseFailed,
    DISTRIBUTED_ALL,
    DISTRIBUTED_SOME,
    DISTRIBUTED_NONE,
    E::CancelRequested,
    E::DeadlineExceeded,
    E::WorkStopped,
];

fn machine(run_state: S, run_sub_state: Sub, flags: RunFlags) -> RunMachine {
    RunMachine {
        run_state,
        run_sub_state,
        flags,
        validation_failed: false,
    }
}

const fn finish(keep_vm: bool) -> A {
    A::Finish { keep_vm }
}

/// The expected outcome of every event in every Running sub-state, with no template flags.
/// `None` is an invalid transition.
fn expected_running(sub: Sub, event: E) -> Option<(S, Sub, A)> {
    let stay = |state: S, action: A| Some((state, sub, action));
    match (sub, event) {
        (_, E::CancelRequested) if sub == Sub::Queued => stay(S::Canceled, finish(false)),
        (_, E::CancelRequested) => stay(S::Canceling, A::StopWork),
        (_, E::DeadlineExceeded) => stay(S::Failed, finish(false)),
        (Sub::Queued, E::Start) => Some((S::Running, Sub::Building, A::Build)),
        (Sub::Building, E::PhaseSucceeded) => Some((S::Running, Sub::Customizing, A::Customize)),
        (Sub::Building, E::PhaseFailed) => stay(S::Failed, finish(false)),
        (Sub::Customizing, E::PhaseSucceeded) => {
            Some((S::Running, Sub::Distributing, A::Distribute))
        }
        (Sub::Customizing, E::PhaseFailed) => stay(S::Failed, finish(false)),
        (Sub::Optimizing, E::PhaseSucceeded) => {
            Some((S::Running, Sub::Distributing, A::Distribute))
        }
        (Sub::Optimizing, E::PhaseFailed) => stay(S::Failed, finish(false)),
        (Sub::Validating, E::PhaseSucceeded) => {
            Some((S::Running, Sub::Distributing, A::Distribute))
        }
        (Sub::Validating, E::PhaseFailed) => stay(S::Failed, finish(false)),
        (Sub::Distributing, DISTRIBUTED_ALL) => stay(S::Succeeded, finish(false)),
        (Sub::Distributing, DISTRIBUTED_SOME) => stay(S::PartiallySucceeded, finish(false)),
        (Sub::Distributing, DISTRIBUTED_NONE) => stay(S::Failed, finish(false)),
        (Sub::Distributing, E::PhaseFailed) => stay(S::Failed, finish(false)),
        _ => None,
    }
}

#[test]
fn every_running_pair_without_flags() {
    for sub in RunSubState::ALL {
        for event in EVENTS {
            let got = machine(S::Running, sub, RunFlags::default())
                .next(event)
                .ok()
                .map(|(m, a)| (m.run_state, m.run_sub_state, a));
            assert_eq!(
                got,
                expected_running(sub, event),
                "Running/{sub:?} + {event:?}"
            );
        }
    }
}

#[test]
fn every_canceling_pair_ends_canceled_except_repeats_and_start() {
    for sub in RunSubState::ALL {
        for event in EVENTS {
            let m = machine(S::Canceling, sub, RunFlags::default());
            let got = m
                .next(event)
                .ok()
                .map(|(m, a)| (m.run_state, m.run_sub_state, a));
            let expected = match event {
                E::Start => None,
                E::CancelRequested => Some((S::Canceling, sub, A::Nothing)),
                _ => Some((S::Canceled, sub, finish(false))),
            };
            assert_eq!(got, expected, "Canceling/{sub:?} + {event:?}");
        }
    }
}

#[test]
fn terminal_states_accept_nothing() {
    for state in RunState::ALL.into_iter().filter(|s| s.is_terminal()) {
        for sub in RunSubState::ALL {
            for event in EVENTS {
                let err = machine(state, sub, RunFlags::default())
                    .next(event)
                    .unwrap_err();
                assert_eq!(err.run_state, state);
                assert_eq!(err.event, event);
            }
        }
    }
}

#[test]
fn optimize_and_validate_add_their_phases_in_order() {
    let flags = RunFlags {
        optimize: true,
        validate: true,
        ..RunFlags::default()
    };
    let mut m = RunMachine::new(flags);
    let mut path = Vec::new();
    for event in [
        E::Start,
        E::PhaseSucceeded,
        E::PhaseSucceeded,
        E::PhaseSucceeded,
        E::PhaseSucceeded,
    ] {
        let (next, action) = m.next(event).unwrap();
        path.push((next.run_sub_state, action));
        m = next;
    }
    assert_eq!(
        path,
        [
            (Sub::Building, A::Build),
            (Sub::Customizing, A::Customize),
            (Sub::Optimizing, A::Optimize),
            (Sub::Validating, A::Validate),
            (Sub::Distributing, A::Distribute),
        ]
    );
    assert_eq!(m.next(DISTRIBUTED_ALL).unwrap().0.run_state, S::Succeeded);
}

#[test]
fn source_validation_only_validates_the_source_and_distributes_nothing() {
    let flags = RunFlags {
        validate: true,
        source_validation_only: true,
        continue_distribute_on_failure: true,
        ..RunFlags::default()
    };
    let (m, action) = RunMachine::new(flags).next(E::Start).unwrap();
    assert_eq!((m.run_sub_state, action), (Sub::Validating, A::Validate));
    let (ok, action) = m.next(E::PhaseSucceeded).unwrap();
    assert_eq!((ok.run_state, action), (S::Succeeded, finish(false)));
    let (failed, action) = m.next(E::PhaseFailed).unwrap();
    assert_eq!((failed.run_state, action), (S::Failed, finish(false)));
}

#[test]
fn failed_validation_distributes_only_when_asked_and_still_fails() {
    let base = RunFlags {
        validate: true,
        ..RunFlags::default()
    };
    let validating = machine(S::Running, Sub::Validating, base);
    assert_eq!(
        validating.next(E::PhaseFailed).unwrap().0.run_state,
        S::Failed
    );

    let continuing = machine(
        S::Running,
        Sub::Validating,
        RunFlags {
            continue_distribute_on_failure: true,
            ..base
        },
    );
    let (distributing, action) = continuing.next(E::PhaseFailed).unwrap();
    assert_eq!(
        (distributing.run_sub_state, action),
        (Sub::Distributing, A::Distribute)
    );
    assert!(distributing.validation_failed);
    let (end, action) = distributing.next(DISTRIBUTED_ALL).unwrap();
    assert_eq!((end.run_state, action), (S::Failed, finish(false)));
}

#[test]
fn abort_keeps_the_vm_of_the_failed_phase_only() {
    let flags = RunFlags {
        validate: true,
        keep_vm_on_customizer_error: true,
        keep_vm_on_validation_error: true,
        ..RunFlags::default()
    };
    let customizing = machine(S::Running, Sub::Customizing, flags);
    assert_eq!(customizing.next(E::PhaseFailed).unwrap().1, finish(true));
    let validating = machine(S::Running, Sub::Validating, flags);
    assert_eq!(validating.next(E::PhaseFailed).unwrap().1, finish(true));
    for sub in [Sub::Building, Sub::Optimizing] {
        assert_eq!(
            machine(S::Running, sub, flags)
                .next(E::PhaseFailed)
                .unwrap()
                .1,
            finish(false)
        );
    }
    assert_eq!(
        customizing.next(E::DeadlineExceeded).unwrap().1,
        finish(false)
    );
    assert_eq!(customizing.next(E::CancelRequested).unwrap().1, A::StopWork);
}
