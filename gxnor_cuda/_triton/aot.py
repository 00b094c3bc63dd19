"""Ahead-of-time compiles of the Triton kernels for a GPU architecture, on any machine.

``compile_config(name, kernel, signature, constexprs, arch)`` runs Triton's real compiler (no GPU
needed) with the options the wrappers launch with and returns PTX, SASS and resource usage, read
with the cuobjdump that Triton ships. Used by tests/test_compiled.py and the GPU benchmarks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from .launch import Kernel, configs, interpreting


@dataclasses.dataclass
class Compiled:
    name: str
    arch: int
    constexprs: dict
    ptx: str
    sass: str
    registers: int
    local_bytes: int  # local memory and stack frame (spill space); 0 when nothing spills

    def fused_fp_ops(self) -> list[str]:
        """PTX lines with a fused float multiply-add (fma.rn.f32 and friends)."""
        return [ln.strip() for ln in self.ptx.splitlines() if re.search(r"\bfma\.rn(\.ftz)?\.f(16|32|64)", ln)]

    def count(self, opcode: str) -> int:
        """Instructions of the SASS whose opcode starts with ``opcode`` (e.g. POPC, IMMA, HGMMA)."""
        return len(re.findall(rf"^\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?{opcode}\w*[\s.]", self.sass, re.M))

    def spills(self) -> int:
        return self.local_bytes + self.count("STL") + self.count("LDL")


INT_OPS = ("IADD3", "IADD", "LOP3", "SHF", "ISETP", "IMNMX", "VIMNMX", "IMAD", "LEA", "SEL", "PRMT", "MOV", "SGXT",
           "BMSK", "IABS", "FLO", "BREV", "LOP")
MAC_CLASSES = ("POPC", "IMMA", "IGMMA", "HMMA", "HGMMA", "BMMA", "FFMA")
_INSTR = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)((?:\.[A-Z0-9_x]+)*)\s*([^;]*);")


def parse(sass: str) -> list[tuple[int, str, str, str]]:
    """(address, opcode, modifiers, operands) of each instruction."""
    out = []
    for line in sass.splitlines():
        m = _INSTR.match(line)
        if m:
            out.append((int(m[1], 16), m[2], m[3], m[4]))
    return out


def hot_loop(instrs) -> list[tuple[int, str, str, str]]:
    """The body of the backward branch holding the most MAC-carrying instructions."""
    best, best_n = [], -1
    for addr, op, _, args in instrs:
        m = re.match(r"0x([0-9a-f]+)", args.strip()) if op == "BRA" else None
        if not m or int(m[1], 16) >= addr:
            continue
        body = [i for i in instrs if int(m[1], 16) <= i[0] <= addr]
        n = sum(1 for i in body if i[1] in MAC_CLASSES)
        if n > best_n:
            best, best_n = body, n
    return best


def loop_ops(sass: str) -> dict[str, int]:
    """Instruction counts (by opcode) of the hot loop of a kernel's SASS."""
    out: dict[str, int] = {}
    for _, op, _, _ in hot_loop(parse(sass)):
        out[op] = out.get(op, 0) + 1
    return out


def tool(name: str) -> str:
    return str(pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name)


def compile_config(name: str, k: Kernel, signature: dict, constexprs: dict, arch: int,
                   fp_fusion: bool | None = None) -> Compiled:
    """Compile one launch configuration for sm_<arch>; ``fp_fusion`` overrides the table's choice."""
    fusion = (not k.exact) if fp_fusion is None else fp_fusion
    fn = k.fn()
    if not hasattr(fn, "cache_key"):
        raise RuntimeError("the kernels were loaded under TRITON_INTERPRET=1: use compile_many, which compiles in a "
                           "separate process")
    src = ASTSource(fn=fn, signature={**signature, **{c: "constexpr" for c in constexprs}},
                    constexprs=constexprs)
    out = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                         options={"num_warps": k.num_warps, "num_stages": k.num_stages, "enable_fp_fusion": fusion})
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(out.asm["cubin"])
        f.flush()
        sass = subprocess.run([tool("cuobjdump"), "-sass", f.name], check=True, capture_output=True,
                              text=True).stdout
        res = subprocess.run([tool("cuobjdump"), "-res-usage", f.name], check=True, capture_output=True,
                             text=True).stdout
    regs = int(re.search(r"REG:(\d+)", res)[1])
    local = int(re.search(r"LOCAL:(\d+)", res)[1]) + int(re.search(r"STACK:(\d+)", res)[1])
    return Compiled(name, arch, constexprs, out.asm["ptx"], sass, regs, local)


def compile_many(requests: list[tuple]) -> list[Compiled]:
    """Compile (config index into launch.configs(), arch, fp_fusion or None, constexpr overrides) requests.
    Under TRITON_INTERPRET=1 (how the tests run here) the kernels are interpreter objects, so the
    compiles run in a child process without it."""
    if not interpreting():
        table = list(configs())
        out = []
        for i, arch, fusion, over in requests:
            name, k, sig, const = table[i]
            out.append(compile_config(name, k, sig, {**const, **over}, arch, fusion))
        return out
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    res = subprocess.run([sys.executable, "-m", "gxnor_cuda._triton.aot"], input=json.dumps(requests), env=env,
                         check=True, capture_output=True, text=True)
    return [Compiled(**d) for d in json.loads(res.stdout)]


if __name__ == "__main__":
    reqs = [tuple(r) for r in json.loads(sys.stdin.read())]
    print(json.dumps([dataclasses.asdict(c) for c in compile_many(reqs)]))
