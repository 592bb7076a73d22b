#!/bin/sh
# Vault password client: hands Ansible the password from $PROSAAS_VAULT_PASSWORD, so an
# unattended run (CI, timer) never prompts and the password never lands in a file.
# Use: ANSIBLE_VAULT_PASSWORD_FILE=scripts/vault-password.sh ansible-playbook -i inventories/staging deploy.yml
if [ -z "${PROSAAS_VAULT_PASSWORD:-}" ]; then
    echo "PROSAAS_VAULT_PASSWORD is not set: export it (or pass --vault-id ENV@prompt)" >&2
    exit 1
fi
printf '%s\n' "$PROSAAS_VAULT_PASSWORD"
