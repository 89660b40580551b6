//! A Containerfile's stages: the ARGs before the first FROM, then each
//! FROM and the steps after it; which stages a target needs (the ones it
//! is built FROM or copies from, transitively), so the rest are skipped.

use anyhow::{bail, Result};

use super::instruction::{Instruction, Step};

#[derive(Debug, Clone)]
pub struct Stage {
    /// Its `AS` name (lower case), if any.
    pub name: Option<String>,
    /// The FROM step.
    pub from: Step,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// `ARG`s before the first FROM: usable in FROM lines.
    pub global_args: Vec<Step>,
    pub stages: Vec<Stage>,
}

pub fn plan(steps: Vec<Step>) -> Result<Plan> {
    let mut global_args = vec![];
    let mut stages: Vec<Stage> = vec![];
    for step in steps {
        match (&step.instruction, stages.last_mut()) {
            (Instruction::From { stage, .. }, _) => {
                if let Some(name) = stage {
                    if stages
                        .iter()
                        .any(|s| s.name.as_deref() == Some(name.as_str()))
                    {
                        bail!("line {}: a stage named {name} is defined twice", step.line);
                    }
                }
                stages.push(Stage {
                    name: stage.clone(),
                    from: step,
                    steps: vec![],
                });
            }
            (_, Some(stage)) => stage.steps.push(step),
            (Instruction::Arg(_), None) => global_args.push(step),
            (_, None) => bail!(
                "line {}: {} comes before any FROM; a Containerfile starts with FROM (only ARG \
                 may come first)",
                step.line,
                step.text
            ),
        }
    }
    if stages.is_empty() {
        bail!("the Containerfile has no FROM");
    }
    Ok(Plan {
        global_args,
        stages,
    })
}

impl Plan {
    /// The stage `reference` names: an earlier stage's name or index, as
    /// FROM and COPY --from use them (None: an image).
    pub fn stage_named(&self, reference: &str, before: usize) -> Option<usize> {
        let lower = reference.to_ascii_lowercase();
        let by_name = self.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()));
        by_name.or_else(|| reference.parse::<usize>().ok().filter(|n| *n < before))
    }

    /// The index of the `--target` stage, or the last.
    pub fn target(&self, target: Option<&str>) -> Result<usize> {
        match target {
            None => Ok(self.stages.len() - 1),
            Some(name) => self.stage_named(name, self.stages.len()).ok_or_else(|| {
                let names: Vec<&str> = self
                    .stages
                    .iter()
                    .filter_map(|s| s.name.as_deref())
                    .collect();
                anyhow::anyhow!(
                    "no stage {name} to --target in the Containerfile (its stages: {})",
                    if names.is_empty() {
                        "none named".to_string()
                    } else {
                        names.join(", ")
                    }
                )
            }),
        }
    }

    /// The stages `target` needs, in build order: those its FROM and
    /// COPY --from name (`image_of` gives a FROM's image after the global
    /// ARGs), and theirs.
    pub fn needed(&self, target: usize, image_of: &dyn Fn(&Step) -> String) -> Vec<usize> {
        let mut needed = vec![false; self.stages.len()];
        let mut todo = vec![target];
        while let Some(index) = todo.pop() {
            if std::mem::replace(&mut needed[index], true) {
                continue;
            }
            let stage = &self.stages[index];
            let mut references = vec![image_of(&stage.from)];
            for step in &stage.steps {
                if let Instruction::Copy {
                    from: Some(from), ..
                } = &step.instruction
                {
                    references.push(from.clone());
                }
            }
            todo.extend(
                references
                    .iter()
                    .filter_map(|reference| self.stage_named(reference, index)),
            );
        }
        (0..self.stages.len()).filter(|i| needed[*i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::containerfile::parse;
    use crate::build::instruction::interpret;

    fn plan_of(text: &str) -> Plan {
        let file = parse(text).unwrap();
        let steps = file
            .lines
            .iter()
            .map(|line| interpret(line, file.escape).unwrap())
            .collect();
        plan(steps).unwrap()
    }

    fn image(step: &Step) -> String {
        match &step.instruction {
            Instruction::From { image, .. } => image.replace("${BASE}", "debian"),
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_target_needs_its_bases_and_what_it_copies_from() {
        let plan = plan_of(
            "ARG BASE=debian\n\
             FROM ${BASE} AS tools\nRUN make tools\n\
             FROM busybox AS unused\nRUN sleep 1000\n\
             FROM tools AS build\nCOPY --from=0 /t /t\n\
             FROM scratch AS test\nCOPY --from=build /app /app\n\
             FROM scratch\nCOPY --from=build /app /app\n",
        );
        assert_eq!(plan.global_args.len(), 1);
        assert_eq!(plan.stages.len(), 5);
        let last = plan.target(None).unwrap();
        assert_eq!(plan.needed(last, &image), [0, 2, 4]);
        let test = plan.target(Some("Test")).unwrap();
        assert_eq!(plan.needed(test, &image), [0, 2, 3]);
        assert!(plan
            .target(Some("nope"))
            .unwrap_err()
            .to_string()
            .contains("tools, unused"));
    }

    #[test]
    fn what_a_plan_refuses() {
        let file = parse("RUN x\nFROM a\n").unwrap();
        let steps = vec![interpret(&file.lines[0], '\\').unwrap()];
        assert!(plan(steps)
            .unwrap_err()
            .to_string()
            .contains("before any FROM"));
        let file = parse("FROM a AS x\nFROM b AS X\n").unwrap();
        let steps = file
            .lines
            .iter()
            .map(|l| interpret(l, '\\').unwrap())
            .collect();
        assert!(plan(steps)
            .unwrap_err()
            .to_string()
            .contains("defined twice"));
    }
}
