//! The bundled MITRE ATT&CK table: the tactics, and the techniques of the ATT&CK **Containers**
//! matrix (Enterprise ATT&CK v15/v16, platform "Containers"), with the tactics each technique
//! appears under in that matrix.
//!
//! Rule files are checked against it: a technique must be in the table, and must appear under at
//! least one of the rule's tactics. Enterprise techniques outside the Containers matrix are listed
//! too, marked `containers_matrix: false`: a few that Kubernetes attacks commonly use through the
//! API server (e.g. T1649, minting client certificates through the CSR API), and the Linux
//! techniques node sensor rules observe inside containers and on hosts (shells, ingress tool
//! transfer, credential files, ptrace injection, kernel modules, …).

/// An ATT&CK tactic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tactic {
    /// `TA0002`.
    pub id: &'static str,
    /// `Execution`.
    pub name: &'static str,
    /// Kill-chain position (0 = earliest), used to order incident stages.
    pub order: u8,
}

/// An ATT&CK technique or sub-technique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Technique {
    /// `T1609` or `T1552.007`.
    pub id: &'static str,
    /// Name; for a sub-technique, `Parent: Sub`.
    pub name: &'static str,
    /// Tactic IDs it appears under.
    pub tactics: &'static [&'static str],
    /// Whether it is in the Containers matrix (false: related Enterprise technique).
    pub containers_matrix: bool,
}

/// The tactics, in kill-chain order.
pub const TACTICS: &[Tactic] = &[
    Tactic { id: "TA0043", name: "Reconnaissance", order: 0 },
    Tactic { id: "TA0042", name: "Resource Development", order: 1 },
    Tactic { id: "TA0001", name: "Initial Access", order: 2 },
    Tactic { id: "TA0002", name: "Execution", order: 3 },
    Tactic { id: "TA0003", name: "Persistence", order: 4 },
    Tactic { id: "TA0004", name: "Privilege Escalation", order: 5 },
    Tactic { id: "TA0005", name: "Defense Evasion", order: 6 },
    Tactic { id: "TA0006", name: "Credential Access", order: 7 },
    Tactic { id: "TA0007", name: "Discovery", order: 8 },
    Tactic { id: "TA0008", name: "Lateral Movement", order: 9 },
    Tactic { id: "TA0009", name: "Collection", order: 10 },
    Tactic { id: "TA0011", name: "Command and Control", order: 11 },
    Tactic { id: "TA0010", name: "Exfiltration", order: 12 },
    Tactic { id: "TA0040", name: "Impact", order: 13 },
];

const IA: &str = "TA0001";
const EX: &str = "TA0002";
const PE: &str = "TA0003";
const PR: &str = "TA0004";
const DE: &str = "TA0005";
const CA: &str = "TA0006";
const DI: &str = "TA0007";
const LM: &str = "TA0008";
const C2: &str = "TA0011";
const IM: &str = "TA0040";

macro_rules! t {
    ($id:literal, $name:literal, [$($tac:expr),*]) => {
        Technique { id: $id, name: $name, tactics: &[$($tac),*], containers_matrix: true }
    };
    ($id:literal, $name:literal, [$($tac:expr),*], related) => {
        Technique { id: $id, name: $name, tactics: &[$($tac),*], containers_matrix: false }
    };
}

/// The techniques.
pub const TECHNIQUES: &[Technique] = &[
    // Initial Access
    t!("T1190", "Exploit Public-Facing Application", [IA]),
    t!("T1133", "External Remote Services", [IA, PE]),
    t!("T1078", "Valid Accounts", [IA, PE, PR, DE]),
    t!("T1078.001", "Valid Accounts: Default Accounts", [IA, PE, PR, DE]),
    t!("T1078.003", "Valid Accounts: Local Accounts", [IA, PE, PR, DE]),
    // Execution
    t!("T1609", "Container Administration Command", [EX]),
    t!("T1610", "Deploy Container", [EX, DE]),
    t!("T1053", "Scheduled Task/Job", [EX, PE, PR]),
    t!("T1053.007", "Scheduled Task/Job: Container Orchestration Job", [EX, PE, PR]),
    t!("T1204", "User Execution", [EX]),
    t!("T1204.003", "User Execution: Malicious Image", [EX]),
    // Persistence / Privilege Escalation
    t!("T1098", "Account Manipulation", [PE, PR]),
    t!("T1098.006", "Account Manipulation: Additional Container Cluster Roles", [PE, PR]),
    t!("T1136", "Create Account", [PE]),
    t!("T1136.001", "Create Account: Local Account", [PE]),
    t!("T1543", "Create or Modify System Process", [PE, PR]),
    t!("T1543.005", "Create or Modify System Process: Container Service", [PE, PR]),
    t!("T1525", "Implant Internal Image", [PE]),
    t!("T1611", "Escape to Host", [PR]),
    t!("T1068", "Exploitation for Privilege Escalation", [PR]),
    // Defense Evasion
    t!("T1612", "Build Image on Host", [DE]),
    t!("T1562", "Impair Defenses", [DE]),
    t!("T1562.001", "Impair Defenses: Disable or Modify Tools", [DE]),
    t!("T1070", "Indicator Removal", [DE]),
    t!("T1036", "Masquerading", [DE]),
    t!("T1036.005", "Masquerading: Match Legitimate Name or Location", [DE]),
    t!("T1550", "Use Alternate Authentication Material", [DE, LM]),
    t!("T1550.001", "Use Alternate Authentication Material: Application Access Token", [DE, LM]),
    // Credential Access
    t!("T1110", "Brute Force", [CA]),
    t!("T1110.001", "Brute Force: Password Guessing", [CA]),
    t!("T1110.003", "Brute Force: Password Spraying", [CA]),
    t!("T1110.004", "Brute Force: Credential Stuffing", [CA]),
    t!("T1528", "Steal Application Access Token", [CA]),
    t!("T1552", "Unsecured Credentials", [CA]),
    t!("T1552.001", "Unsecured Credentials: Credentials In Files", [CA]),
    t!("T1552.007", "Unsecured Credentials: Container API", [CA]),
    // Discovery
    t!("T1613", "Container and Resource Discovery", [DI]),
    t!("T1046", "Network Service Discovery", [DI]),
    t!("T1069", "Permission Groups Discovery", [DI]),
    // Impact
    t!("T1485", "Data Destruction", [IM]),
    t!("T1490", "Inhibit System Recovery", [IM]),
    t!("T1496", "Resource Hijacking", [IM]),
    t!("T1499", "Endpoint Denial of Service", [IM]),
    // Related Enterprise techniques seen against the Kubernetes API (not in the matrix).
    t!("T1649", "Steal or Forge Authentication Certificates", [CA], related),
    t!("T1557", "Adversary-in-the-Middle", [CA, "TA0009"], related),
    // Related Linux techniques seen by the node sensor (not in the matrix).
    t!("T1059", "Command and Scripting Interpreter", [EX], related),
    t!("T1059.004", "Command and Scripting Interpreter: Unix Shell", [EX], related),
    t!("T1505", "Server Software Component", [PE], related),
    t!("T1505.003", "Server Software Component: Web Shell", [PE], related),
    t!("T1098.004", "Account Manipulation: SSH Authorized Keys", [PE, PR], related),
    t!("T1053.003", "Scheduled Task/Job: Cron", [EX, PE, PR], related),
    t!("T1547", "Boot or Logon Autostart Execution", [PE, PR], related),
    t!("T1547.006", "Boot or Logon Autostart Execution: Kernel Modules and Extensions", [PE, PR], related),
    t!("T1574", "Hijack Execution Flow", [PE, PR, DE], related),
    t!("T1574.006", "Hijack Execution Flow: Dynamic Linker Hijacking", [PE, PR, DE], related),
    t!("T1055", "Process Injection", [PR, DE], related),
    t!("T1055.008", "Process Injection: Ptrace System Calls", [PR, DE], related),
    t!("T1548", "Abuse Elevation Control Mechanism", [PR, DE], related),
    t!("T1548.001", "Abuse Elevation Control Mechanism: Setuid and Setgid", [PR, DE], related),
    t!("T1548.003", "Abuse Elevation Control Mechanism: Sudo and Sudo Caching", [PR, DE], related),
    t!("T1620", "Reflective Code Loading", [DE], related),
    t!("T1070.002", "Indicator Removal: Clear Linux or Mac System Logs", [DE], related),
    t!("T1070.003", "Indicator Removal: Clear Command History", [DE], related),
    t!("T1222", "File and Directory Permissions Modification", [DE], related),
    t!(
        "T1222.002",
        "File and Directory Permissions Modification: Linux and Mac File and Directory Permissions Modification",
        [DE],
        related
    ),
    t!("T1003", "OS Credential Dumping", [CA], related),
    t!("T1003.008", "OS Credential Dumping: /etc/passwd and /etc/shadow", [CA], related),
    t!("T1552.003", "Unsecured Credentials: Bash History", [CA], related),
    t!("T1552.004", "Unsecured Credentials: Private Keys", [CA], related),
    t!("T1552.005", "Unsecured Credentials: Cloud Instance Metadata API", [CA], related),
    t!("T1083", "File and Directory Discovery", [DI], related),
    t!("T1095", "Non-Application Layer Protocol", [C2], related),
    t!("T1105", "Ingress Tool Transfer", [C2], related),
];

/// Looks a tactic up by ID (`TA0002`) or name (case-insensitive, `execution`,
/// `privilege-escalation`, `Privilege Escalation`).
pub fn tactic(id_or_name: &str) -> Option<&'static Tactic> {
    let norm = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], " ");
    TACTICS.iter().find(|t| t.id.eq_ignore_ascii_case(id_or_name) || norm(t.name) == norm(id_or_name))
}

/// Looks a technique up by ID (`T1609`, `T1552.007`).
pub fn technique(id: &str) -> Option<&'static Technique> {
    TECHNIQUES.iter().find(|t| t.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for t in TECHNIQUES {
            assert!(!t.tactics.is_empty(), "{}", t.id);
            for tac in t.tactics {
                assert!(tactic(tac).is_some(), "{} -> {tac}", t.id);
            }
            if let Some((parent, _)) = t.id.split_once('.') {
                let p = technique(parent).unwrap_or_else(|| panic!("parent of {}", t.id));
                assert!(t.name.starts_with(p.name), "{}", t.id);
            }
        }
        let mut ids: Vec<_> = TECHNIQUES.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TECHNIQUES.len());
        assert_eq!(tactic("privilege-escalation").map(|t| t.id), Some("TA0004"));
        assert_eq!(technique("t1609").map(|t| t.name), Some("Container Administration Command"));
        assert!(technique("T1619").is_none(), "Cloud Storage Object Discovery is not a Containers technique");
    }
}
