"""PyTorch's side of test/interop.test.ts: checkpoints crossing between dawnet and torch.

    interop.py resnet --depth 50 --dawnet ckpt.safetensors --input x.safetensors --dir DIR
        loads dawnet's checkpoint into torchvision's resnet50 (strict, `optimizer.*` dropped) and
        writes its eval logits to DIR/from_dawnet.safetensors; then writes a torchvision model of
        its own as DIR/torchvision.safetensors and DIR/torchvision.pth, with its logits in
        DIR/torchvision_logits.safetensors.
    interop.py rotnet --dir DIR --input x.safetensors
        writes RotNet's NetworkInNetwork as its reference code saves it (torch.save of
        {'network': state_dict, 'epoch': 7} to DIR/model_net_epoch7) and its logits.
    interop.py nets --classes 3 --dir DIR
        writes the --net files of test/cli.test.ts with torch.save: an untrained torchvision
        resnet18 (DIR/resnet18.pth), RotNet's NIN-3 as its reference code saves it (DIR/nin3.pth)
        and the DCGAN example's 64 px discriminator, ndf 4, one channel (DIR/netD.pth).
    interop.py unsafe --out FILE --marker PATH
        writes a torch.save-shaped archive whose pickle would create PATH if it were executed.
"""

import argparse
import io
import os
import pickle
import sys
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import reference_models as rm  # noqa: E402
import safetensors_np as st  # noqa: E402
from generate import randomise_batch_norm  # noqa: E402


def logits(net, path):
    x = torch.from_numpy(st.load(path)["x"])
    net.eval()
    with torch.no_grad():
        return net(x).numpy()


def resnet(args):
    state = {k: torch.from_numpy(v) for k, v in st.load(args.dawnet).items() if not k.startswith("optimizer.")}
    classes = state["fc.weight"].shape[0]
    net = rm.resnet(args.depth, classes, "imagenet")
    net.load_state_dict(state, strict=True)
    st.save(os.path.join(args.dir, "from_dawnet.safetensors"), {"logits": logits(net, args.input)})

    torch.manual_seed(args.depth)
    own = rm.resnet(args.depth, classes, "imagenet")
    randomise_batch_norm(own, torch.Generator().manual_seed(1))
    st.save(os.path.join(args.dir, "torchvision.safetensors"), {k: v.numpy() for k, v in own.state_dict().items()})
    torch.save(own.state_dict(), os.path.join(args.dir, "torchvision.pth"))
    st.save(os.path.join(args.dir, "torchvision_logits.safetensors"), {"logits": logits(own, args.input)})


def rotnet(args):
    torch.manual_seed(4)
    net = rm.NetworkInNetwork(num_classes=4, num_stages=4)
    randomise_batch_norm(net, torch.Generator().manual_seed(2))
    torch.save({"network": net.state_dict(), "epoch": 7}, os.path.join(args.dir, "model_net_epoch7"))
    st.save(os.path.join(args.dir, "rotnet_logits.safetensors"), {"logits": logits(net, args.input)})


def nets(args):
    torch.manual_seed(5)
    torch.save(rm.resnet(18, args.classes, "imagenet").state_dict(), os.path.join(args.dir, "resnet18.pth"))
    nin = rm.NetworkInNetwork(num_classes=4, num_stages=3)
    torch.save({"network": nin.state_dict(), "epoch": 1}, os.path.join(args.dir, "nin3.pth"))
    torch.save(rm.DcganDiscriminator(4, 1).state_dict(), os.path.join(args.dir, "netD.pth"))


class Unsafe:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def unsafe(args):
    data = io.BytesIO()
    pickle.dump({"weight": Unsafe(args.marker)}, data, protocol=2)
    with zipfile.ZipFile(args.out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data.getvalue())
        z.writestr("archive/version", "3\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("resnet")
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--dawnet", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--dir", required=True)
    p = sub.add_parser("rotnet")
    p.add_argument("--input", required=True)
    p.add_argument("--dir", required=True)
    p = sub.add_parser("nets")
    p.add_argument("--classes", type=int, required=True)
    p.add_argument("--dir", required=True)
    p = sub.add_parser("unsafe")
    p.add_argument("--out", required=True)
    p.add_argument("--marker", required=True)
    args = parser.parse_args()
    torch.backends.mkldnn.enabled = False  # torch's native float32 kernels, as scripts/golden/generate.py
    {"resnet": resnet, "rotnet": rotnet, "nets": nets, "unsafe": unsafe}[args.command](args)


if __name__ == "__main__":
    main()
