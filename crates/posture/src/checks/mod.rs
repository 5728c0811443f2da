//! The built-in checks, one module per area.

pub(crate) mod controlplane;
pub(crate) mod kubelet;
pub(crate) mod network;
pub(crate) mod rbac;
pub(crate) mod workload;

use crate::engine::Emitter;

/// Run every built-in check that looks at this object's kind.
pub(crate) fn run(e: &mut Emitter) {
    let owned = e.ctx.complete && e.ctx.owned_by_present_controller(e.obj, e.opts);
    match e.obj.kind.as_str() {
        "Role" | "ClusterRole" => rbac::role(e),
        "RoleBinding" | "ClusterRoleBinding" => rbac::binding(e),
        "ServiceAccount" => rbac::service_account(e),
        "Service" => network::service(e),
        "Ingress" => network::ingress(e),
        "Namespace" => network::namespace(e),
        "KubeletConfiguration" | "ConfigMap" => kubelet::run(e),
        _ => {}
    }
    if let Some((spec, ptr)) = e.obj.pod_spec() {
        if !owned {
            workload::run(e, spec, ptr);
        }
        controlplane::run(e, spec, ptr);
    }
    if !owned {
        workload::default_namespace(e);
    }
}
