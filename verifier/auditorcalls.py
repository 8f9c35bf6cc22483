"""The auditor's calls of the client: signed heads, proofs, bundles, absence proofs, traces,
signals."""

from __future__ import annotations

from registry.eip712 import Domain
from registry.errors import (
    InvalidInput,
)
from registry.fingerprints import GoodType, parse_fingerprint
from registry.parties import check_platform_id
from registry.treehead import TreeHead
from verifier.absence import MAX_ABSENCE_BYTES, Absence
from verifier.bundle import MAX_BUNDLE_BYTES, Bundle
from verifier.compliance import MAX_REPORT_BYTES, ComplianceReport
from verifier.problems import (
    UnexpectedAnswer,
)
from verifier.schemas import (
    GoodTypeName,
    ProofOut,
    SignalPage,
    TraceOut,
)
from verifier.signedanswers import verify_tree_head
from verifier.transport import Answer, RegistryTransport, fingerprint_text, good_type_name
from verifier.trust import MAX_TRUST_ROOT_BYTES, WELL_KNOWN_PATH, TrustPolicy, TrustRoot


class AuditorCalls(RegistryTransport):
    """What an auditor reads: signed heads, proofs, bundles, a good's trace, the signals."""

    def tree_head(self, *, trust: TrustPolicy | None = None) -> TreeHead:
        """The newest signed tree head; with ``trust``, checked under the pinned trust root
        (domain, the key for its size, signature), else parsed only: a head checked against
        what the server says about itself proves nothing."""
        answer = self._send("GET", "/v1/log/head")
        head = self._model(TreeHead, answer)
        if trust is not None:
            verify_tree_head(head, trust)
        return head

    def trust_root(self) -> TrustRoot:
        """The trust root the registry serves about itself, parsed strictly. Compare its
        ``fingerprint()`` with one its operator gave you out of band before you pin it."""
        answer = self._send("GET", WELL_KNOWN_PATH, limit=MAX_TRUST_ROOT_BYTES)
        try:
            return TrustRoot.parse(answer.body)
        except InvalidInput as exc:
            raise UnexpectedAnswer(f"the registry's trust root: {exc.detail}") from None

    def domain(self) -> Domain:
        """The EIP-712 domain the registry signs under (from its newest tree head)."""
        return self.tree_head().domain

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """The RFC 9162 inclusion proof of a leaf in a tree size."""
        params = {"leaf_index": leaf_index, "tree_size": tree_size}
        answer = self._send("GET", "/v1/log/proof/inclusion", params=params)
        return self._proof(answer)

    def consistency_proof(self, from_size: int, tree_size: int) -> list[bytes]:
        """The RFC 9162 consistency proof between two tree sizes."""
        params = {"from_size": from_size, "tree_size": tree_size}
        answer = self._send("GET", "/v1/log/proof/consistency", params=params)
        return self._proof(answer)

    def _proof(self, answer: Answer) -> list[bytes]:
        try:
            return [parse_fingerprint(node) for node in self._model(ProofOut, answer).proof]
        except InvalidInput:
            raise UnexpectedAnswer("a proof node is not 0x and 64 hex digits") from None

    def proof_bundle(self, good_type: GoodType | GoodTypeName, fingerprint: bytes | str) -> Bundle:
        """The good's proof bundle (``tracemark-bundle/v4``), parsed strictly; check it with
        ``verifier.offline.check_bundle`` and the chain, trusting nothing the server said."""
        path = f"/v1/goods/{good_type_name(good_type)}/{fingerprint_text(fingerprint)}/proof"
        answer = self._send("GET", path, limit=MAX_BUNDLE_BYTES)
        return Bundle.parse(answer.body)

    def absence_proof(
        self, good_type: GoodType | GoodTypeName, fingerprint: bytes | str
    ) -> Absence:
        """The proof that the good is not registered (``tracemark-absence/v2``), parsed
        strictly; check it with ``verifier.statecheck.check_absence`` and the chain. A good
        that is registered raises ``ProblemConflict``: fetch its proof bundle instead."""
        path = f"/v1/goods/{good_type_name(good_type)}/{fingerprint_text(fingerprint)}/absence"
        answer = self._send("GET", path, limit=MAX_ABSENCE_BYTES)
        return Absence.parse(answer.body)

    def trace(self, good_type: GoodType | GoodTypeName, fingerprint: bytes | str) -> TraceOut:
        """The good's whole history in order (``tracemark-trace/v1``): an API key with the
        audit scope, or the good's creator signed in."""
        path = f"/v1/goods/{good_type_name(good_type)}/{fingerprint_text(fingerprint)}/trace"
        return self._model(TraceOut, self._send("GET", path))

    def trace_mermaid(self, good_type: GoodType | GoodTypeName, fingerprint: bytes | str) -> str:
        """The good's holders as Mermaid ``graph LR`` text."""
        path = f"/v1/goods/{good_type_name(good_type)}/{fingerprint_text(fingerprint)}/trace"
        answer = self._send("GET", path, params={"format": "mermaid"})
        return answer.body.decode("utf-8")

    def signals(
        self,
        *,
        code: str | None = None,
        subject: str | None = None,
        platform: str | None = None,
        good: tuple[GoodType | GoodTypeName, bytes | str] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> SignalPage:
        """One page of the standing fraud and piracy signals (an API key with the audit
        scope); ``good`` is (good_type, fingerprint)."""
        params: dict[str, str | int] = {}
        for name, value in (
            ("code", code),
            ("subject", subject),
            ("platform", platform),
            ("cursor", cursor),
            ("limit", limit),
        ):
            if value is not None:
                params[name] = value
        if good is not None:
            params["good"] = f"{good_type_name(good[0])}:{fingerprint_text(good[1])}"
        return self._model(SignalPage, self._send("GET", "/v1/signals", params=params))

    def compliance_report(self, platform: str, start: int, end: int) -> ComplianceReport:
        """A platform's compliance report over [start, end] (Unix seconds), parsed strictly
        (``tracemark-compliance-report/v1``): an auditor's key, or the platform's own. Check
        it with ``verifier.compliance.check_compliance_report``: nothing the server said is
        trusted, its summary included."""
        platform = check_platform_id(platform)  # never a path of its own
        answer = self._send(
            "GET",
            f"/v1/compliance/platforms/{platform}/report",
            params={"from": int(start), "to": int(end)},
            limit=MAX_REPORT_BYTES,
        )
        return ComplianceReport.parse(answer.body)
