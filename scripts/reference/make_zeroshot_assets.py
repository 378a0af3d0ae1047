#!/usr/bin/env python3
"""Writes assets/zeroshot/: the class names and prompt templates of zero-shot classification.

ImageNet-1k from open_clip's src/open_clip/zero_shot_metadata.py (IMAGENET_CLASSNAMES,
OPENAI_IMAGENET_TEMPLATES -- what open_clip_train's zero-shot evaluation uses -- and
SIMPLE_IMAGENET_TEMPLATES); CIFAR-10 and CIFAR-100 from OpenAI CLIP's data/prompts.md (open_clip
ships none for them; CLIP_benchmark, which evaluates open_clip models, uses these). Templates are
written with "{}" where the class name goes, one per line, in the source's order.

usage: make_zeroshot_assets.py OPEN_CLIP/src/open_clip/zero_shot_metadata.py CLIP/data/prompts.md OUT_DIR
"""
import ast
import os
import re
import sys


def lambda_template(node):
    # lambda c: f'a bad photo of a {c}.'  ->  'a bad photo of a {}.'
    body = node.body
    assert isinstance(body, ast.JoinedStr), ast.dump(body)
    out = []
    for v in body.values:
        if isinstance(v, ast.Constant):
            assert '{' not in v.value and '}' not in v.value
            out.append(v.value)
        else:
            assert isinstance(v, ast.FormattedValue) and v.value.id == node.args.args[0].arg
            out.append('{}')
    return ''.join(out)


def open_clip_lists(path):
    tree = ast.parse(open(path, encoding='utf-8').read())
    lists = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Tuple):
            name = stmt.targets[0].id
            items = stmt.value.elts
            if all(isinstance(e, ast.Lambda) for e in items):
                lists[name] = [lambda_template(e) for e in items]
            else:
                lists[name] = [e.value for e in items]
    return lists


def prompts_md(path, section):
    text = open(path, encoding='utf-8').read()
    start = text.index('## ' + section + '\n')
    block = text[start:text.index('```\n', text.index('```bash', start) + 7)]
    lists = {}
    for name in ('classes', 'templates'):
        m = re.search(name + r' = \[(.*?)\n\]', block, re.S)
        lists[name] = [ast.literal_eval(x.strip().rstrip(',')) for x in m.group(1).strip().split('\n')]
    return lists


def write(path, lines):
    for l in lines:
        assert l == l.strip() and '\n' not in l and l, repr(l)
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        f.write(''.join(l + '\n' for l in lines))
    print(f'{path}: {len(lines)} lines')


def main():
    meta, prompts, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    oc = open_clip_lists(meta)
    write(os.path.join(out, 'imagenet1k_classnames.txt'), oc['IMAGENET_CLASSNAMES'])
    write(os.path.join(out, 'imagenet1k_templates.txt'), oc['OPENAI_IMAGENET_TEMPLATES'])
    write(os.path.join(out, 'imagenet1k_simple_templates.txt'), oc['SIMPLE_IMAGENET_TEMPLATES'])
    for sec, name in (('CIFAR10', 'cifar10'), ('CIFAR100', 'cifar100')):
        p = prompts_md(prompts, sec)
        write(os.path.join(out, name + '_classnames.txt'), p['classes'])
        write(os.path.join(out, name + '_templates.txt'), p['templates'])


if __name__ == '__main__':
    main()
