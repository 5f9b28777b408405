from django import forms
from django.contrib.auth import get_user_model

from refiner.errors import Invalid
from refiner.models import Membership, Workspace
from refiner.workspace_settings import SETTINGS, clean_settings


class WorkspaceSettingsForm(forms.ModelForm):
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://app.example.com"}),
        help_text="One origin per line (scheme and host, like https://app.example.com). "
        "Empty allows any origin.",
    )

    class Meta:
        model = Workspace
        fields = ["name", "identity_verification", "allowed_origins", "recontact_days"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["allowed_origins"] = "\n".join(self.instance.allowed_origins)

    def clean_allowed_origins(self) -> list[str]:
        lines = (line.strip() for line in self.cleaned_data["allowed_origins"].splitlines())
        return [line for line in lines if line]

    def clean(self) -> dict:
        # The rules are the REST API's (`clean_settings`); the fields only read the page.
        cleaned = super().clean()
        try:
            cleaned |= clean_settings({key: cleaned[key] for key in SETTINGS if key in cleaned})
        except Invalid as problem:
            for field, message in problem.fields.items():
                self.add_error(field, message)
        return cleaned


class AddMemberForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.ROLES, initial=Membership.EDITOR)

    def __init__(self, *args, workspace: Workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean_email(self):
        email = self.cleaned_data["email"]
        users = get_user_model().objects.filter(is_active=True)
        user = (
            users.filter(email__iexact=email).first()
            or users.filter(username__iexact=email).first()
        )
        if user is None:
            raise forms.ValidationError(
                "There is no user with this email; an administrator must create their "
                "account first."
            )
        if Membership.objects.filter(workspace=self.workspace, user=user).exists():
            raise forms.ValidationError("This user is already a member.")
        self.cleaned_data["user"] = user
        return email


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.ROLES)
