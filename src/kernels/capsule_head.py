"""FastCapsuleHead: CapsuleHead (src/layers.py, Eqs. 3-6) with capsule-guided routing, computed
without forming the primary capsules.

When the encoder states are narrower than the capsules (CapsNet: 100-d states, 300-d capsules),
everything Eqs. 4-6 do with a primary capsule p_i is linear in it, so the head can run in the state
space: the same function in about a third of the arithmetic. With q_i = W_p h_i + b_p, the primary
capsule is p_i = f_i q_i, f_i the squash factor of
    |q_i|^2 = h_i^T (W_p^T W_p) h_i + 2 (W_p^T b_p) . h_i + |b_p|^2.
Then p_i . k = f_i (h_i . W_p^T k + b_p . k) for Eq. 4 (k = W c) and Eq. 5 (k = W_r z_j), and the sum
of Eq. 6 is sum_i w_ij p_i = W_p (sum_i w_ij f_i h_i) + b_p sum_i w_ij f_i: products with D-vectors,
not d-vectors.

FastCapsuleHead is a CapsuleHead that overrides `forward` only: the same parameters, submodules
and state_dict keys. Its forward reads them as CapsuleHead.forward does, and of the
CapsuleGuidedRouting `routing` the parts Eqs. 5-6 use: `weight` (W_r), `guide` (G), `scale` (s),
`dropout`, and `keep` (the weights it shows for explain).
"""
import torch

from ..layers import CapsuleGuidedRouting, CapsuleHead, squash
from ..masking import masked_softmax


class FastCapsuleHead(CapsuleHead):
    """CapsuleHead's forward in the state space (the module's docstring): the same (B, C) capsule
    lengths, and the same u_i and w_ij kept for explain."""

    @staticmethod
    def applies(head):
        """Whether FastCapsuleHead computes head's function: capsule-guided routing, no dropout on
        W_p h, states narrower than the capsules (where it is also the faster way)."""
        return (isinstance(head.routing, CapsuleGuidedRouting)
                and isinstance(head.capsule_dropout, torch.nn.Identity)
                and head.primary.in_features < head.primary.out_features)

    def forward(self, states, mask, aspect, eps=1e-9):
        weight, bias = self.primary.weight, self.primary.bias               # (d, D), (d,)
        size2 = ((states @ (weight.t() @ weight)) * states).sum(-1) + 2 * (states @ (weight.t() @ bias))
        size2 = (size2 + bias @ bias).clamp(min=0.0)                        # |q_i|^2, (B, T)
        factor = size2 / (1.0 + size2) / torch.sqrt(size2 + eps)            # squash: p_i = factor_i q_i

        def dot_primary(keys):                              # p_i . k for keys (B, d, K) or (d, K)
            return factor.unsqueeze(-1) * (states @ (weight.t() @ keys) + (bias @ keys).unsqueeze(-2))

        aspect_capsule = squash(self.aspect(aspect))                        # c (B, d), Eq. 3
        query = self.normalise.query_vector(aspect_capsule).unsqueeze(-1)   # W c, (B, d, 1)
        norm_weights = masked_softmax(dot_primary(query).squeeze(-1), mask, dim=1)   # u_i, Eq. 4
        self.keep("u", norm_weights)
        routing = self.routing
        guide_keys = routing.weight @ squash(routing.guide).t()             # W_r z_j, (d, C)
        coupling = torch.softmax(dot_primary(guide_keys), dim=-1)           # w_ij (B, T, C), Eq. 5
        routing.keep("routing", coupling)
        pooled = coupling * (norm_weights * factor * routing.scale).unsqueeze(-1)   # s u_i w_ij f_i
        capsules = torch.bmm(pooled.transpose(1, 2), states) @ weight.t() + pooled.sum(1).unsqueeze(-1) * bias
        return squash(routing.dropout(capsules)).norm(dim=-1)               # v_j's lengths (B, C), Eq. 6
