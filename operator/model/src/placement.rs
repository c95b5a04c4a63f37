//! Which satellites share a Kubernetes node (`spec.placement.groups`): neighbours, so that
//! few inter-satellite links cross between nodes. Every link that crosses is a VXLAN tunnel
//! through the cluster's network, with its delay to take off and its bandwidth to share; a
//! link within a node is a veth pair.
//!
//! The satellites are in the plan's order: shell by shell, plane by plane, round each plane.
//! With at least as many planes as groups, each group is a run of whole planes (a plane's
//! ring of ISLs stays inside it; only the links between the last plane of one group and the
//! first of the next cross). With fewer, the satellites are cut into arcs (a plane split in
//! two arcs crosses at both ends). Groups are as equal in satellites as the cut allows.
//! Ground stations and platforms are in no group: their links move between satellites.

use crate::plan::{NodeIdx, Plan};

/// Each node's group (`0..groups`), by node index; `None` for ground nodes. One group: every
/// satellite in group 0.
pub fn groups(plan: &Plan) -> Vec<Option<u32>> {
    let n = plan.n_sats;
    let groups = (plan.placement_groups.max(1) as usize).min(n.max(1));
    // Units that are not cut: the Walker planes, and each TLE satellite alone.
    let mut units: Vec<(NodeIdx, usize)> = Vec::new();
    let mut next = 0;
    for shell in &plan.shells {
        for s in next..shell.first as usize {
            units.push((s as NodeIdx, 1));
        }
        for p in 0..shell.planes {
            units.push((shell.first + p * shell.per_plane, shell.per_plane as usize));
        }
        next = (shell.first + shell.planes * shell.per_plane) as usize;
    }
    for s in next..n {
        units.push((s as NodeIdx, 1));
    }
    let planes_whole = units.len() >= groups;
    // A unit (or, when cutting, a satellite) goes to the group its middle falls in, with the
    // satellites laid out evenly over the groups: each group gets at least one.
    let group_of = |before: usize, len: usize| -> u32 {
        let middle2 = 2 * before + len; // twice the middle, to stay in integers
        ((middle2 * groups) / (2 * n)).min(groups - 1) as u32
    };
    let mut out = vec![None; plan.nodes.len()];
    let mut before = 0;
    for (first, len) in units {
        for k in 0..len {
            out[first as usize + k] =
                Some(if planes_whole { group_of(before, len) } else { group_of(before + k, 1) });
        }
        before += len;
    }
    out
}

/// How many of the plan's ISLs join satellites of different groups.
pub fn crossing_isls(plan: &Plan, groups: &[Option<u32>]) -> usize {
    plan.isls.iter().filter(|l| groups[l.a as usize] != groups[l.b as usize]).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{assert_problem, plan, problems};

    fn walker(planes: u32, per_plane: u32, groups: u32) -> Plan {
        plan(&format!(
            "  shells:\n  - {{name: s, walker: {{type: star, planes: {planes}, satsPerPlane: {per_plane}}}, \
             altitudeKm: 780, inclinationDeg: 86.4}}\n  groundStations:\n  - {{name: gs, latDeg: 0, lonDeg: 0}}\n\
             \x20 placement: {{groups: {groups}}}"
        ))
    }

    fn members(groups: &[Option<u32>], g: u32) -> Vec<usize> {
        groups.iter().enumerate().filter(|(_, x)| **x == Some(g)).map(|(i, _)| i).collect()
    }

    #[test]
    fn whole_planes_go_together_in_runs_and_ground_nodes_in_none() {
        // Iridium's 6 x 11 on 3 nodes: planes 0-1, 2-3, 4-5.
        let plan = walker(6, 11, 3);
        let g = groups(&plan);
        for (group, planes) in [(0, 0..2), (1, 2..4), (2, 4..6)] {
            assert_eq!(members(&g, group), (planes.start * 11..planes.end * 11).collect::<Vec<_>>());
        }
        assert_eq!(g[66], None, "the ground station");
        // Only the inter-plane links between plane 1 and 2, and 3 and 4, cross: 2 x 11.
        assert_eq!(crossing_isls(&plan, &g), 22);
        // One group: nothing crosses.
        assert_eq!(crossing_isls(&walker(6, 11, 1), &groups(&walker(6, 11, 1))), 0);
    }

    #[test]
    fn uneven_runs_of_planes_cover_every_group() {
        // 6 planes on 4 nodes: 1, 2, 1, 2 planes.
        let plan = walker(6, 4, 4);
        let g = groups(&plan);
        let sizes: Vec<usize> = (0..4).map(|k| members(&g, k).len()).collect();
        assert_eq!(sizes, [4, 8, 4, 8]);
        // As many groups as planes: a plane each.
        let g = groups(&walker(6, 4, 6));
        assert!((0..6).all(|k| members(&g, k) == (k as usize * 4..k as usize * 4 + 4).collect::<Vec<_>>()));
    }

    #[test]
    fn with_fewer_planes_than_groups_the_planes_are_cut_into_arcs() {
        // tiny's one ring of 8 on 2 nodes: two arcs of 4; the ring crosses twice.
        let tiny = include_str!("../../../scenarios/tiny.yaml");
        let tiny = crate::compile_yaml(&format!("{tiny}  placement: {{groups: 2}}\n")).unwrap();
        let g = groups(&tiny);
        assert_eq!(members(&g, 0), [0, 1, 2, 3]);
        assert_eq!(members(&g, 1), [4, 5, 6, 7]);
        assert_eq!(crossing_isls(&tiny, &g), 2);
        // 2 planes of 5 on 3 nodes: arcs of 3 or 4 satellites.
        let g = groups(&walker(2, 5, 3));
        let sizes: Vec<usize> = (0..3).map(|k| members(&g, k).len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        assert!(sizes.iter().all(|&s| (3..=4).contains(&s)), "{sizes:?}");
    }

    #[test]
    fn more_groups_than_satellites_is_refused() {
        let shell = "  shells:\n  - {name: s, walker: {type: delta, planes: 1, satsPerPlane: 3}, altitudeKm: 780, inclinationDeg: 53}";
        let p = problems(&format!("{shell}\n  placement: {{groups: 4}}"));
        assert_problem(&p, &["spec.placement.groups", "4 groups is more than the 3 satellites"]);
        assert_problem(
            &problems(&format!("{shell}\n  placement: {{groups: 0}}")),
            &["spec.placement.groups"],
        );
    }
}
