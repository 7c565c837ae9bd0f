//! Pausing orders in the simulator (RDSCore `gotoSitePause` / `gotoSiteResume`): a paused
//! order's running action freezes where its robot is, keeping the operation time it still
//! owes, and no next action starts; on resume the action goes on from there.

use super::model::{settle, start, Sim};
use super::{FleetError, State};

impl Sim {
    /// Pauses or resumes order `seq` at `t`. An order that has ended is left alone; one without
    /// a robot yet is marked, so it starts nothing once it gets one.
    pub(super) fn set_paused(&mut self, seq: u64, paused: bool, t: i64) {
        let Some(order) = self.orders.get_mut(&seq) else {
            return;
        };
        if order.ended.is_some() || order.paused == paused {
            return;
        }
        order.paused = paused;
        self.dirty = true;
        let (Some(r), Some(i)) = (order.vehicle, order.find(State::Running)) else {
            if !paused {
                self.proceed(seq, t);
            }
            return;
        };
        let robot = &mut self.robots[r];
        let action = &mut order.actions[i];
        if paused {
            let Some(run) = action.run else { return };
            // What the operation still owes: all of it while travelling, the rest once there.
            let owed = run.end_ms - run.arrive_ms.max(t);
            settle(robot, action, t);
            action.run = None;
            action.held_op_ms = Some(owed.clamp(0, run.end_ms - run.arrive_ms));
        } else if action.run.is_none() && robot.online {
            start(robot, action, t, &self.config);
        }
    }

    /// Pauses or resumes every unfinished order opened for task record `external_id`.
    pub(super) fn set_paused_for(&mut self, external_id: &str, paused: bool, t: i64) {
        for seq in self.open_orders_of(external_id) {
            self.set_paused(seq, paused, t);
        }
    }

    /// Pauses or resumes the order robot `vehicle` serves (nothing when it has none).
    pub(super) fn set_paused_robot(
        &mut self,
        vehicle: &str,
        paused: bool,
        t: i64,
    ) -> Result<(), FleetError> {
        let r = self.robot_index(vehicle)?;
        if let Some(seq) = self.robots[r].order {
            self.set_paused(seq, paused, t);
        }
        Ok(())
    }
}
